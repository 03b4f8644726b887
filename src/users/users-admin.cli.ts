import type { DataSource } from 'typeorm';
import { AuditEvent } from '../audit/audit-event.entity.js';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import type { UnitOfWork } from '../database/unit-of-work.js';
import { normalizeEmail } from './email.js';
import { User } from './user.entity.js';

/** Operator commands run from the shell (`npm run cli -- users:promote <email>`), outside HTTP. */
export class UsersAdminCli {
  constructor(private readonly dataSource: DataSource) {}

  async promote(rawEmail: string): Promise<string> {
    const email = normalizeEmail(rawEmail);
    return this.dataSource.transaction(async (manager) => {
      const user = await manager.getRepository(User).findOneBy({ email });
      if (!user) {
        throw new Error(`No account has the email ${email}.`);
      }
      if (user.role === 'admin') {
        return `${email} is already an administrator.`;
      }
      await manager.getRepository(User).update({ id: user.id }, { role: 'admin' });
      const audit = new AuditService(
        manager.getRepository(AuditEvent),
        { tx: manager } as UnitOfWork,
        new Clock(),
      );
      await audit.record(
        'user.promoted',
        { userId: user.id, metadata: { via: 'cli', role: 'admin' } },
        manager,
      );
      return `${email} is now an administrator.`;
    });
  }
}
