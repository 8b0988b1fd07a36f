"""The electronic file: export records of xdomea packages and tombstones of cases deleted after retention.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "efile_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("prozess_id", sa.String(length=36), nullable=False),
        sa.Column("vorgang_id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("message_sha256", sa.String(length=64), nullable=False),
        sa.Column("documents", sa.Text(), nullable=False),
        sa.Column("submission_sha256", sa.String(length=64), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_hash", sa.String(length=64), nullable=False),
        sa.Column("retention_years", sa.Integer(), nullable=False),
        sa.Column("retention_until", sa.String(length=10), nullable=False),
        sa.Column("aussonderungsart", sa.String(length=1), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_efile_export_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_efile_export")),
        sa.UniqueConstraint("case_id", name=op.f("uq_efile_export_case_id")),
        sa.UniqueConstraint("prozess_id", name=op.f("uq_efile_export_prozess_id")),
    )
    op.create_table(
        "case_tombstone",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("process_id", sa.String(length=255), nullable=False),
        sa.Column("aktenzeichen", sa.String(length=128), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        sa.Column("prozess_id", sa.String(length=36), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention_until", sa.String(length=10), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_tombstone")),
    )
    with op.batch_alter_table("case_tombstone") as batch_op:
        batch_op.create_index("ix_case_tombstone_tenant_deleted_at", ["tenant", "deleted_at"], unique=False)


def downgrade():
    with op.batch_alter_table("case_tombstone") as batch_op:
        batch_op.drop_index("ix_case_tombstone_tenant_deleted_at")
    op.drop_table("case_tombstone")
    op.drop_table("efile_export")
