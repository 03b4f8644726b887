import { budgetKey, canonicalMailbox } from './mail-budget.js';

describe(canonicalMailbox.name, () => {
  it('should fold case, +tags, compatibility forms and IDN domains into one mailbox', () => {
    const variants = [
      'ada@bücher.example',
      'Ada@BÜCHER.example',
      'ada+news@bücher.example',
      'ADA+x+y@xn--bcher-kva.example',
      ' ａｄａ@bücher.example. ',
      '"ada"@bücher.example',
      '"\\a\\da+x"@bücher.example',
    ];
    expect(new Set(variants.map(canonicalMailbox))).toEqual(new Set(['ada@xn--bcher-kva.example']));
    expect(new Set(variants.map(budgetKey)).size).toBe(1);
  });

  it('should keep different mailboxes apart', () => {
    expect(canonicalMailbox('ada@example.test')).not.toBe(canonicalMailbox('ada.l@example.test'));
    expect(budgetKey('ada@example.test')).not.toBe(budgetKey('ada@example.org'));
    expect(budgetKey('ada@example.test')).toMatch(/^[0-9a-f]{64}$/);
  });
});
