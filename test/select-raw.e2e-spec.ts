import { Column, DataSource, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { EntityRepository } from '../src/database/entity-repository.js';
import type { UnitOfWork } from '../src/database/unit-of-work.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from './support/database.js';

class Size {
  @Column({ type: 'int' })
  width!: number;

  @Column({ type: 'int' })
  height!: number;
}

@Entity({ name: 'gadgets' })
class Gadget {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 50 })
  name!: string;

  @Column({ type: 'boolean' })
  active!: boolean;

  @Column({ type: 'datetime', precision: 3, nullable: true })
  madeAt!: Date | null;

  @Column(() => Size)
  size!: Size;

  /** A second embedded object of the same class: its columns share property names with the first's. */
  @Column(() => Size)
  box!: Size;
}

/** An entity with a lazy relation: TypeORM makes each one with a loader for it. */
@Entity({ name: 'parts' })
class Part {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ name: 'gadget_id', type: 'int' })
  gadgetId!: number;

  @ManyToOne(() => Gadget, { lazy: true })
  @JoinColumn({ name: 'gadget_id' })
  gadget!: Promise<Gadget>;
}

class RawRepository<T extends object> extends EntityRepository<T> {
  all(): Promise<T[]> {
    return this.selectRaw(`SELECT ${this.raw.selectList} FROM ${this.raw.table} ORDER BY id`, []);
  }
}

/**
 * `selectRaw` against what TypeORM loads itself, on the test database: SQLite, or MySQL (TEST_DB=mysql),
 * where outside a unit of work the rows come straight from mysql2's pool.
 */
describe('EntityRepository.selectRaw', () => {
  let database: ThrowawayDatabase;
  let dataSource: DataSource;
  let gadgets: RawRepository<Gadget>;
  let parts: RawRepository<Part>;

  beforeAll(async () => {
    database = await createThrowawayDatabase();
    const entities = [Gadget, Part];
    dataSource = await new DataSource(
      database.url.startsWith('sqlite:')
        ? {
            type: 'better-sqlite3',
            database: database.url.slice('sqlite:'.length),
            entities,
            synchronize: true,
          }
        : { type: 'mysql', url: database.url, entities, synchronize: true },
    ).initialize();
    // The repository's view of a unit of work with none open: statements go to the data source.
    const outsideUnitOfWork = { tx: dataSource.manager, isTransactionActive: () => false };
    const uow = outsideUnitOfWork as unknown as UnitOfWork;
    gadgets = new (class extends RawRepository<Gadget> {
      constructor() {
        super(uow, Gadget);
      }
    })();
    parts = new (class extends RawRepository<Part> {
      constructor() {
        super(uow, Part);
      }
    })();
    await dataSource.getRepository(Gadget).save([
      {
        name: 'lamp',
        active: true,
        madeAt: new Date('2026-01-02T03:04:05.678Z'),
        size: { width: 3, height: 4 },
        box: { width: 5, height: 6 },
      },
      {
        name: 'desk',
        active: false,
        madeAt: null,
        size: { width: 120, height: 75 },
        box: { width: 130, height: 80 },
      },
    ]);
    await dataSource.getRepository(Part).insert({ gadgetId: 2 });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('should hydrate rows as the entities TypeORM itself loads, embedded columns included', async () => {
    const raw = await gadgets.all();
    const loaded = await dataSource.getRepository(Gadget).find({ order: { id: 'ASC' } });

    expect(raw).toStrictEqual(loaded);
    expect(
      raw.map((gadget) => [gadget.active, gadget.madeAt?.toISOString() ?? null, gadget.size, gadget.box]),
    ).toEqual([
      [true, '2026-01-02T03:04:05.678Z', { width: 3, height: 4 }, { width: 5, height: 6 }],
      [false, null, { width: 120, height: 75 }, { width: 130, height: 80 }],
    ]);
    for (const gadget of raw) {
      expect(gadget).toBeInstanceOf(Gadget);
      expect(gadget.size).toBeInstanceOf(Size);
      expect(Object.keys(gadget)).not.toContain('width');
    }
  });

  it('should make entities with lazy relations as TypeORM does, loaders included', async () => {
    const [part] = await parts.all();

    expect(part).toBeInstanceOf(Part);
    expect(part.gadgetId).toBe(2);
    await expect(part.gadget).resolves.toMatchObject({ id: 2, name: 'desk' });
  });
});
