"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 17:33:18.052898
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('counter',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'scope', name=op.f('pk_counter'))
    )
    op.create_table('deployment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('files', sa.Text(), nullable=False),
    sa.Column('versions', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment'))
    )
    op.create_table('process_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('dialect', sa.String(length=16), nullable=False),
    sa.Column('executable', sa.Boolean(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('spec', sa.LargeBinary(), nullable=False),
    sa.Column('meta', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_version')),
    sa.UniqueConstraint('process_id', 'version', name='uq_process_version_process_id_version')
    )
    with op.batch_alter_table('process_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_version_process_id'), ['process_id'], unique=False)

    op.create_table('case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('process_id', sa.String(length=255), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('aktenzeichen', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('workflow', sa.LargeBinary(), nullable=False),
    sa.Column('serializer_version', sa.String(length=16), nullable=False),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('audit_seq', sa.Integer(), nullable=False),
    sa.Column('audit_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['process_version.id'], name=op.f('fk_case_version_id_process_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case')),
    sa.UniqueConstraint('tenant', 'aktenzeichen', name='uq_case_tenant_aktenzeichen')
    )
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_process_id'), ['process_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_submission_id'), ['submission_id'], unique=False)
        batch_op.create_index('ix_case_tenant_state', ['tenant', 'state'], unique=False)

    op.create_table('model_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['process_version.id'], name=op.f('fk_model_file_version_id_process_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_file')),
    sa.UniqueConstraint('version_id', 'path', name='uq_model_file_version_id_path')
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('element_id', sa.String(length=255), nullable=True),
    sa.Column('old', sa.Text(), nullable=True),
    sa.Column('new', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_audit_event_case_id_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('case_id', 'seq', name='uq_audit_event_case_id_seq')
    )
    op.create_table('task',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('process_id', sa.String(length=255), nullable=False),
    sa.Column('element_id', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('assignee', sa.String(length=255), nullable=True),
    sa.Column('candidate_users', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('follow_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_task_case_id_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task'))
    )
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.create_index('ix_task_assignee_state', ['assignee', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_task_tenant_state_due', ['tenant', 'state', 'due_at'], unique=False)

    op.create_table('task_group',
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('group_name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_task_group_task_id_task')),
    sa.PrimaryKeyConstraint('task_id', 'group_name', name=op.f('pk_task_group'))
    )
    with op.batch_alter_table('task_group', schema=None) as batch_op:
        batch_op.create_index('ix_task_group_group_name', ['group_name', 'task_id'], unique=False)




def downgrade():

    with op.batch_alter_table('task_group', schema=None) as batch_op:
        batch_op.drop_index('ix_task_group_group_name')

    op.drop_table('task_group')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_tenant_state_due')
        batch_op.drop_index(batch_op.f('ix_task_case_id'))
        batch_op.drop_index('ix_task_assignee_state')

    op.drop_table('task')
    op.drop_table('audit_event')
    op.drop_table('model_file')
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_tenant_state')
        batch_op.drop_index(batch_op.f('ix_case_submission_id'))
        batch_op.drop_index(batch_op.f('ix_case_process_id'))

    op.drop_table('case')
    with op.batch_alter_table('process_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_version_process_id'))

    op.drop_table('process_version')
    op.drop_table('deployment')
    op.drop_table('counter')

