"""Letters sent to the citizen: one row per dispatched (or Postversand-pending) letter of a case.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dispatch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("process_id", sa.String(length=255), nullable=False),
        sa.Column("element_id", sa.String(length=255), nullable=False),
        sa.Column("letter", sa.String(length=255), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deemed_delivered_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_dispatch_case_id_case")),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("fk_dispatch_document_id_document")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch")),
    )
    with op.batch_alter_table("dispatch") as batch_op:
        batch_op.create_index("ix_dispatch_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_dispatch_tenant_channel", ["tenant", "channel"], unique=False)


def downgrade():
    with op.batch_alter_table("dispatch") as batch_op:
        batch_op.drop_index("ix_dispatch_tenant_channel")
        batch_op.drop_index("ix_dispatch_case_id")
    op.drop_table("dispatch")
