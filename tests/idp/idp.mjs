// A real OpenID provider for the tests: npm's OpenID-Certified `oidc-provider`.
//
// Usage: node tests/idp/idp.mjs  (the configuration, signing keys included, comes as JSON in
// the IDP_CONFIG variable; tests/idp/fixtures.py builds it). It listens on a free loopback port and prints one line
// `{"issuer": "http://127.0.0.1:<port>"}` on stdout once it accepts connections.
//
// Agents get JWT access tokens by client credentials for a resource indicator (RFC 8707); the
// token's `aud` is the resource, its signing algorithm the client's `alg`, its lifetime the
// client's `ttl`. People log in through the development login form (any login name that is a
// configured user; any password) with authorization code + PKCE; their ID and access tokens
// carry the user's claims (role, Go admin claim, name). Consent is granted without a page.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(new URL('../npm/package.json', import.meta.url));
const { default: Provider, interactionPolicy } = await import(pathToFileURL(require.resolve('oidc-provider')).href);

const config = JSON.parse(process.env.IDP_CONFIG || '{}');
const users = config.users || {};
const clients = config.clients || [];
const clientById = Object.fromEntries(clients.map((c) => [c.client_id, c]));
const resourceScope = config.resource_scope || '';
const defaultTtl = config.access_token_ttl || 300;

// The signing keys come from the test (so it can also forge tokens with them).
const jwks = { keys: config.keys };

function clientMetadata(c) {
  if (c.kind === 'login') {
    return {
      client_id: c.client_id,
      client_secret: c.client_secret,
      // native: loopback redirect URIs match on any port (RFC 8252 §7.3), so the test's
      // Atryum on a free port can use them.
      application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris || [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: `openid profile offline_access ${resourceScope}`.trim(),
    };
  }
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: c.scope || resourceScope,
  };
}

// First-party login: no consent page, not even the one native clients always get.
const policy = interactionPolicy.base();
policy.get('consent').checks.remove('native_client_prompt');

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: clients.map(clientMetadata),
  jwks,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  interactions: { policy },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', ...resourceScope.split(' ').filter(Boolean)],
  claims: {
    openid: ['sub'],
    profile: ['name', 'email', ...(config.user_claims || [])],
  },
  async findAccount(_ctx, sub) {
    const user = users[sub];
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...user }) };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile offline_access');
    grant.addOIDCClaims(['name', 'email', ...(config.user_claims || [])]);
    for (const resource of ctx.oidc.params.resource ? [].concat(ctx.oidc.params.resource) : []) {
      grant.addResourceScope(resource, resourceScope);
    }
    await grant.save();
    return grant;
  },
  async extraTokenClaims(_ctx, token) {
    if (token.accountId) return users[token.accountId];
    return clientById[token.clientId]?.extra_claims || undefined;
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf || config.default_resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource, client) => ({
        scope: resourceScope,
        audience: resource,
        accessTokenTTL: clientById[client.clientId]?.ttl || defaultTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: clientById[client.clientId]?.alg || 'RS256' } },
      }),
    },
  },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
  },
  ttl: {
    IdToken: defaultTtl,
    Session: 3600,
    Interaction: 600,
    Grant: 3600,
    RefreshToken: 3600,
  },
});

for (const event of ['grant.error', 'server_error', 'authorization.error']) {
  provider.on(event, (_ctx, err) => process.stderr.write(`${event}: ${err.message} ${err.error_detail || ''}\n`));
}
server.on('request', provider.callback());
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
