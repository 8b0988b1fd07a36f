"""Submissions from the OZG mailbox and the documents of cases.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("fitconnect_case_id", sa.String(length=64), nullable=True),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("destination_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("problem_type", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.Column("data_json", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_submission_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission")),
        sa.UniqueConstraint("submission_id", name=op.f("uq_submission_submission_id")),
    )
    with op.batch_alter_table("submission") as batch_op:
        batch_op.create_index("ix_submission_tenant_state", ["tenant", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_submission_fitconnect_case_id"), ["fitconnect_case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_submission_case_id"), ["case_id"], unique=False)
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_pk", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("attachment_id", sa.String(length=64), nullable=True),
        sa.Column("filename", sa.String(length=512), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sha512", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_document_case_id_case")),
        sa.ForeignKeyConstraint(["submission_pk"], ["submission.id"], name=op.f("fk_document_submission_pk_submission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
    )
    with op.batch_alter_table("document") as batch_op:
        batch_op.create_index(batch_op.f("ix_document_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_submission_pk"), ["submission_pk"], unique=False)


def downgrade():
    op.drop_table("document")
    op.drop_table("submission")
