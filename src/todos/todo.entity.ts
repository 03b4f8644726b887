import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, TimestampColumn, UpdatedAtColumn, UserIdColumn } from '../database/columns.js';
import { User } from '../users/user.entity.js';

@Entity({ name: 'todos' })
@Index('IDX_todos_user_id_id', ['userId', 'id'])
@Index('IDX_todos_user_id_completed_id', ['userId', 'completed', 'id'])
export class Todo {
  @PrimaryGeneratedColumn({ type: 'int', unsigned: true })
  id!: number;

  @UserIdColumn()
  userId!: number;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ type: 'boolean', default: false })
  completed!: boolean;

  @TimestampColumn({ name: 'due_at', nullable: true })
  dueAt!: Date | null;

  @CreatedAtColumn()
  createdAt!: Date;

  @UpdatedAtColumn()
  updatedAt!: Date;
}
