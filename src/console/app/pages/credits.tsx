import { useEffect, useState } from 'preact/hooks';
import { DOMAIN_ERROR, gql, subscribe, unwrap, withIdempotencyKey, type Result } from '../api.js';
import { formatTime, formatUsd, MAX_LEDGER_AMOUNT, parseUsd } from '../money.js';
import type { Me } from '../main.js';
import { actsAsUser, restrictedNote } from '../navigation.js';
import { CursorPager, Figures, messageOf, Notice, Section, Table, useLoad } from '../ui.js';

interface Balance {
  available: number;
  purchased: number;
  granted: number;
  refunded: number;
  settled: number;
  reserved: number;
  fees: number;
}
interface Entry {
  id: string;
  at: string;
  type: string;
  amount: number;
  effect: number;
  generationId: string | null;
}
interface Page {
  edges: { node: Entry }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const BALANCE_FIELDS = 'available purchased granted refunded settled reserved fees';
const BALANCE = `query Balance { balance { ${BALANCE_FIELDS} } }`;
const BALANCE_CHANGED = `subscription BalanceChanged { balanceChanged { ${BALANCE_FIELDS} } }`;
const LEDGER = 'query Ledger($after: String) { ledgerEntries(first: 15, after: $after) { edges { node { id at type amount effect generationId } } pageInfo { hasNextPage endCursor } } }';
const PURCHASE = `mutation Purchase($amount: Money!, $paymentMethod: String!, $idempotencyKey: String) {
  purchaseCredits(amount: $amount, paymentMethod: $paymentMethod, idempotencyKey: $idempotencyKey) { __typename ... on Purchase { amount fee total balance { ${BALANCE_FIELDS} } } ${DOMAIN_ERROR} }
}`;

/** Readable names of the ledger's entry types. */
const ENTRY_LABEL: Record<string, string> = {
  PurchaseStarted: 'Purchase started (paying)',
  PurchaseFailed: 'Purchase failed',
  CreditsPurchased: 'Purchase',
  CreditsGranted: 'Grant',
  CreditsRefunded: 'Refund',
  CreditsReserved: 'Reserved for a generation',
  ReservationSettled: 'Charged',
  ReservationReleased: 'Released',
  ReservationExpired: 'Reservation expired',
};

const Purchase = ({ onBought }: { onBought: (balance: Balance, text: string) => void }) => {
  const [amount, setAmount] = useState('10');
  const [method, setMethod] = useState('pm_card_visa');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // What the card will be charged, before anyone buys: the server's fee for this amount, asked once typing pauses.
  const [quote, setQuote] = useState<{ amount: number; fee: number } | null>(null);
  const typed = parseUsd(amount, 2);
  useEffect(() => {
    if (typed === null || typed <= 0 || typed > MAX_LEDGER_AMOUNT) return setQuote(null);
    let live = true;
    const timer = setTimeout(() => {
      gql<{ purchaseFee: number }>('query Fee($amount: Money!) { purchaseFee(amount: $amount) }', { amount: typed }).then(
        (data) => live && setQuote({ amount: typed, fee: data.purchaseFee }),
        () => live && setQuote(null), // the purchase itself says what is wrong
      );
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [typed]);
  const submit = async (event: Event) => {
    event.preventDefault();
    const nano = parseUsd(amount, 2);
    // Checked here, in dollars: past the Money scalar's range the server's refusal speaks of variables and nano-dollars.
    if (nano === null || nano <= 0 || nano > MAX_LEDGER_AMOUNT) return setError(`Enter an amount in dollars and cents, from $0.01 to ${formatUsd(MAX_LEDGER_AMOUNT)}, e.g. 10 or 12.50.`);
    setBusy(true);
    setError(null);
    try {
      // One purchase, one charge: bought again after an answer that never came, it is the same purchase.
      const bought = await withIdempotencyKey(`purchase\n${nano}\n${method}`, async (idempotencyKey) =>
        unwrap((await gql<{ purchaseCredits: Result<{ amount: number; fee: number; total: number; balance: Balance }> }>(PURCHASE, { amount: nano, paymentMethod: method, idempotencyKey })).purchaseCredits),
      );
      onBought(bought.balance, `Bought ${formatUsd(bought.amount)} (fee ${formatUsd(bought.fee)}, charged ${formatUsd(bought.total)}).`);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Buy credits">
      <div>
        <label for="buy-amount">Amount (USD)</label>
        <input id="buy-amount" inputMode="decimal" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} aria-describedby="buy-quote" required />
        <p id="buy-quote" class="muted small" aria-live="polite">
          {quote && quote.amount === typed ? `Fee ${formatUsd(quote.fee)}: the card is charged ${formatUsd(quote.amount + quote.fee)}.` : '\u00a0'}
        </p>
      </div>
      <div>
        <label for="buy-method">Payment method</label>
        <select id="buy-method" value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
          <option value="pm_card_visa">Test card (Visa, pm_card_visa)</option>
        </select>
      </div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy}>
          Buy credits
        </button>
      </div>
      {error && <Notice kind="error">{error}</Notice>}
    </form>
  );
};

const Ledger = ({ version }: { version: number }) => {
  // Cursors of the pages before the current one, to go back (the connection pages forward, newest first).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const { value, error } = useLoad(() => gql<{ ledgerEntries: Page }>(LEDGER, { after }), [after, version]);
  const page = value?.ledgerEntries;
  return (
    <Section title="Ledger">
      {error && <Notice kind="error">{error}</Notice>}
      <Table label="Ledger entries" columns={['When', 'Entry', ['Amount', 'num'], ['Effect on balance', 'num'], 'Generation']}>
        {page?.edges.map(({ node }) => (
          <tr key={node.id}>
            <td>{formatTime(node.at)}</td>
            <td>{ENTRY_LABEL[node.type] ?? node.type}</td>
            <td class="num">{formatUsd(node.amount)}</td>
            <td class={`num ${node.effect < 0 ? 'neg' : node.effect > 0 ? 'pos' : ''}`}>{node.effect > 0 ? `+${formatUsd(node.effect)}` : formatUsd(node.effect)}</td>
            <td class="mono small">{node.generationId ?? ''}</td>
          </tr>
        ))}
      </Table>
      {page && page.edges.length === 0 && <p class="muted">No entries yet.</p>}
      <CursorPager cursors={cursors} setCursors={setCursors} pageInfo={page?.pageInfo} />
    </Section>
  );
};

export const CreditsPage = ({ me }: { me: Me }) => {
  const loaded = useLoad(() => gql<{ balance: Balance }>(BALANCE));
  const [live, setLive] = useState<Balance | null>(null);
  const [bought, setBought] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(
    () =>
      subscribe<{ balanceChanged: Balance }>(BALANCE_CHANGED, {}, {
        next: ({ balanceChanged }) => {
          setLive(balanceChanged);
          setVersion((v) => v + 1);
        },
        error: () => undefined, // the figures stay as last loaded; reloading the page subscribes again
      }),
    [],
  );
  const balance = live ?? loaded.value?.balance ?? null;
  return (
    <>
      <h1>Credits</h1>
      <Section title="Balance">
        {loaded.error && <Notice kind="error">{loaded.error}</Notice>}
        {balance && (
          <>
            <p class="big" data-testid="balance" aria-live="polite">
              {formatUsd(balance.available)}
            </p>
            <Figures
              items={[
                ['Purchased', formatUsd(balance.purchased)],
                ['Granted', formatUsd(balance.granted)],
                ['Charged', formatUsd(balance.settled)],
                ['Held for generations in flight', formatUsd(balance.reserved)],
                ['Refunded', formatUsd(balance.refunded)],
                ['Fees paid', formatUsd(balance.fees)],
              ]}
            />
          </>
        )}
      </Section>
      {/* Buying needs the user role and a key without restrictions: without them, the balance and ledger only. */}
      {actsAsUser(me.roles) && me.restricted && (
        <Section title="Buy credits">
          <Notice kind="info">{restrictedNote('buy credits')}</Notice>
        </Section>
      )}
      {actsAsUser(me.roles) && !me.restricted && (
        <Section title="Buy credits">
          <Purchase
            onBought={(next, text) => {
              setLive(next);
              setBought(text);
              setVersion((v) => v + 1);
            }}
          />
          {bought && <Notice kind="ok">{bought}</Notice>}
        </Section>
      )}
      <Ledger version={version} />
    </>
  );
};
