"""labels: objects from annotation files (origin, label class, matched label box)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 01:45:00

- ``label_classes``: the label vocabulary of imported datasets, apart from the detector's
  classes.
- ``objects.origin``: ``detection`` (the detector's box) or ``label`` (a box of an annotation
  file); existing rows are detections.
- ``objects.label_class_id``: a labelled box's class (its ``class_id`` is then the negative
  code -1 - label_class_id, never a detector class: see shared/db/models.py).
- ``objects.label_match_id`` / ``label_match_iou``: the labelled box a detection overlaps
  with IoU >= 0.5 (the best one), if any.
- ``ingestion_items.labels``: the labels of an image member, parsed at planning time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "label_classes",
        sa.Column("id", IdType, primary_key=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_classes")),
        sa.UniqueConstraint("name", name=op.f("uq_label_classes_name")),
    )
    with op.batch_alter_table("objects") as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=16), nullable=False, server_default="detection")
        )
        batch_op.add_column(sa.Column("label_class_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("label_match_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("label_match_iou", sa.Float(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_objects_label_class_id_label_classes"),
            "label_classes",
            ["label_class_id"],
            ["id"],
        )
        batch_op.create_index(
            "ix_objects_label_class", ["space_id", "origin", "label_class_id"], unique=False
        )
    with op.batch_alter_table("ingestion_items") as batch_op:
        batch_op.add_column(sa.Column("labels", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingestion_items") as batch_op:
        batch_op.drop_column("labels")
    with op.batch_alter_table("objects") as batch_op:
        batch_op.drop_index("ix_objects_label_class")
        batch_op.drop_constraint(
            op.f("fk_objects_label_class_id_label_classes"), type_="foreignkey"
        )
        batch_op.drop_column("label_match_iou")
        batch_op.drop_column("label_match_id")
        batch_op.drop_column("label_class_id")
        batch_op.drop_column("origin")
    op.drop_table("label_classes")
