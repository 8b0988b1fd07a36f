"""The inbox: covering indexes for its reads of the task table, applicant search, deputies (Vertretung)
and the log of reads of personal data.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("task") as batch_op:
        batch_op.create_index("ix_task_inbox", ["id", "tenant", "state", "assignee", "due_at", "created_at", "case_id",
                                                "process_id", "element_id"], unique=False)
        batch_op.create_index("ix_task_tenant_state_assignee", ["tenant", "state", "assignee"], unique=False)
    op.create_table(
        "case_applicant",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_applicant_case_id_case")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_applicant")),
    )
    op.create_table(
        "applicant_word",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("word", sa.String(length=255), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_applicant_word_case_id_case")),
        sa.PrimaryKeyConstraint("tenant", "word", "case_id", name=op.f("pk_applicant_word")),
    )
    op.create_table(
        "absence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_absence_user_id_user_account")),
        sa.ForeignKeyConstraint(["deputy_id"], ["user_account.id"], name=op.f("fk_absence_deputy_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_absence")),
    )
    with op.batch_alter_table("absence") as batch_op:
        batch_op.create_index(batch_op.f("ix_absence_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_absence_deputy_id"), ["deputy_id"], unique=False)
    op.create_table(
        "data_read",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_data_read_case_id_case")),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("fk_data_read_document_id_document")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_read")),
    )
    with op.batch_alter_table("data_read") as batch_op:
        batch_op.create_index("ix_data_read_tenant_at", ["tenant", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_data_read_case_id"), ["case_id"], unique=False)


def downgrade():
    op.drop_table("data_read")
    op.drop_table("absence")
    op.drop_table("applicant_word")
    op.drop_table("case_applicant")
    with op.batch_alter_table("task") as batch_op:
        batch_op.drop_index("ix_task_tenant_state_assignee")
        batch_op.drop_index("ix_task_inbox")
