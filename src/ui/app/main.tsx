/**
 * @module The dashboard's shell (docs/ui.md): the navigation, a hash router (the agent serves one
 * index.html; `#/services/payments` needs no server route), and the token dialog.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { useCatalog } from './catalog.js';
import { onTokenChange, setToken, token, tokenRefusal } from './token.js';
import { ServicesPage } from './pages/services.js';
import { ServicePage } from './pages/service.js';
import { KvPage } from './pages/kv.js';
import { GraphPage } from './pages/graph.js';
import { ResourcesPage } from './pages/resources.js';
import { ProxiesPage } from './pages/proxies.js';
import { TextInput } from './parts.js';

const NAV: readonly (readonly [string, string])[] = [
  ['#/services', 'Services'],
  ['#/kv', 'Key/Value'],
  ['#/graph', 'Call graph'],
  ['#/resources', 'Mesh resources'],
  ['#/proxies', 'Proxies'],
];

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/services');
  useEffect(() => {
    const on = (): void => setHash(location.hash || '#/services');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Page({ hash }: { hash: string }) {
  const catalog = useCatalog();
  const [path = '', query = ''] = hash.slice(1).split('?');
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  switch (parts[0]) {
    case 'services':
      return parts[1] === undefined ? (
        <ServicesPage catalog={catalog} query={new URLSearchParams(query).get('q') ?? ''} />
      ) : (
        <ServicePage catalog={catalog} name={parts[1]} />
      );
    case 'kv':
      return <KvPage selected={parts.slice(1).join('/')} />;
    case 'graph':
      return <GraphPage />;
    case 'resources':
      return <ResourcesPage />;
    case 'proxies':
      return <ProxiesPage />;
    default:
      return <p class="empty">No such page: {hash}</p>;
  }
}

function TokenDialog({ refusal }: { refusal: string }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="token-dialog"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
      }}
    >
      <h2>An ACL token is needed</h2>
      <p class="error" data-testid="token-refusal">
        {refusal}
      </p>
      <label>
        Token (kept in this tab only)
        <TextInput name="token" type="password" value={value} onValue={setValue} />
      </label>
      <button type="submit">Use token</button>
    </form>
  );
}

function App() {
  const hash = useHash();
  // The token's generation: a new token remounts the pages, so every read starts over with it.
  const [generation, setGeneration] = useState(0);
  const [refusal, setRefusal] = useState(tokenRefusal());
  useEffect(
    () =>
      onTokenChange(() => {
        const r = tokenRefusal();
        setRefusal(r);
        if (r === undefined) setGeneration((g) => g + 1);
      }),
    [],
  );
  const section = `#/${hash.slice(2).split(/[/?]/)[0] ?? ''}`;
  return (
    <>
      <header>
        <strong class="brand">Meshwork</strong>
        <nav>
          {NAV.map(([href, label]) => (
            <a href={href} class={section === href ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        {token() !== '' && (
          <button class="link" onClick={() => setToken('')}>
            Forget token
          </button>
        )}
      </header>
      <main>
        {refusal !== undefined && <TokenDialog refusal={refusal} />}
        <Page key={generation} hash={hash} />
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
