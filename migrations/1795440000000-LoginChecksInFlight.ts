import { type MigrationInterface, type QueryRunner, TableColumn } from 'typeorm';

/**
 * Each lockout counter also counts the credential checks under way, so that concurrent guesses
 * cannot all pass the gate before any of them is counted: a check takes its place among the
 * threshold before it runs (DESIGN §5, "Brute force").
 */
export class LoginChecksInFlight1795440000000 implements MigrationInterface {
  name = 'LoginChecksInFlight1795440000000';

  async up(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    await q.addColumn(
      'login_failures',
      new TableColumn({ name: 'in_flight', type: mysql ? 'int' : 'integer', unsigned: true, default: 0 }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('login_failures', 'in_flight');
  }
}
