import { Column, Entity, Index } from 'typeorm';
import { TimestampColumn } from '../database/columns.js';
import { OwnedEntity } from '../owned/owned.entity.js';

@Entity({ name: 'todos' })
@Index('IDX_todos_user_id_id', ['userId', 'id'])
@Index('IDX_todos_user_id_completed_id', ['userId', 'completed', 'id'])
export class Todo extends OwnedEntity {
  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ type: 'boolean', default: false })
  completed!: boolean;

  @TimestampColumn({ name: 'due_at', nullable: true })
  dueAt!: Date | null;
}
