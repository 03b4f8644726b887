import { BodyBudget, declaredBodySize } from './body-budget.js';

describe(declaredBodySize.name, () => {
  it.each([
    [{}, 0],
    [{ 'content-length': '0' }, 0],
    [{ 'content-length': '120' }, 120],
    [{ 'content-length': '5000' }, 2000],
    [{ 'content-length': 'abc' }, 2000],
    [{ 'content-length': '-1' }, 2000],
    [{ 'content-length': '99999999999999999999' }, 2000],
    [{ 'transfer-encoding': 'chunked' }, 2000],
  ])('should count %j as %i bytes with a 2,000-byte body limit', (headers, bytes) => {
    expect(declaredBodySize(headers, 2000)).toBe(bytes);
  });
});

describe(BodyBudget.name, () => {
  it("should refuse a client past its own share and anyone past the total, and return what's given back", () => {
    const budget = new BodyBudget({ total: 250, perClient: 100 });
    expect(budget.take('a', 60)).toBeUndefined();
    expect(budget.take('a', 40)).toBeUndefined();
    expect(budget.take('a', 1)).toBe('client');
    expect(budget.take('b', 100)).toBeUndefined();
    expect(budget.take('c', 51)).toBe('total');
    expect(budget.take('c', 50)).toBeUndefined();
    expect(budget.held()).toBe(250);
    expect(budget.held('a')).toBe(100);
    budget.give('a', 60);
    expect(budget.take('a', 60)).toBeUndefined();
    for (const [client, bytes] of [
      ['a', 60],
      ['a', 40],
      ['b', 100],
      ['c', 50],
    ] as const) {
      budget.give(client, bytes);
    }
    expect(budget.held()).toBe(0);
    expect(['a', 'b', 'c'].map((client) => budget.held(client))).toEqual([0, 0, 0]);
  });

  it('should count a refused take as nothing', () => {
    const budget = new BodyBudget({ total: 100, perClient: 100 });
    expect(budget.take('a', 101)).toBe('client');
    expect(budget.held()).toBe(0);
    expect(budget.held('a')).toBe(0);
  });
});
