"""ingestion: staged member hashes, per-space image embeddings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingestion_items") as batch_op:
        batch_op.add_column(sa.Column("staged_sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "image_embeddings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("image_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "space_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_embeddings_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["embedding_spaces.id"],
            name=op.f("fk_image_embeddings_space_id_embedding_spaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_embeddings")),
        sa.UniqueConstraint(
            "image_id", "space_id", name=op.f("uq_image_embeddings_image_id_space_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("image_embeddings")
    with op.batch_alter_table("ingestion_items") as batch_op:
        batch_op.drop_column("staged_sha256")
