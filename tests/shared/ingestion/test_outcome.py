"""shared/ingestion/outcome.py: skipped members folded into patterns, one line per reason."""

from __future__ import annotations

from shared.ingestion.outcome import MemberPattern, ReasonGroup, member_patterns


def test_members_fold_into_folder_and_extension_patterns() -> None:
    members = [f"labels/{i:06d}.txt" for i in range(100)]
    members += [f"meta{i}.json" for i in range(23)]
    members += ["classes.txt", "a/b/notes.md", "a/b/other.MD"]
    assert member_patterns(members) == [
        MemberPattern("labels/*.txt", 100),
        MemberPattern("*.json", 23),
        MemberPattern("a/b/*.md", 2),
        MemberPattern("classes.txt", 1),
    ]


def test_reason_line() -> None:
    group = ReasonGroup(
        "not_an_image",
        "not images",
        124,
        [MemberPattern("labels/*.txt", 100), MemberPattern("*.json", 23)],
        more_patterns=1,
    )
    assert group.line() == "124 not images: labels/*.txt (100), *.json (23), … 1 more pattern(s)"
