/**
 * The keep-alive HTTP(S) agent for an API server connection, through the cluster's
 * proxy-url when it has one. client-node's KubeConfig makes a new agent (without
 * keep-alive) on every applyToHTTPSOptions call; its choice of proxy agent is kept:
 * socks* URLs through socks-proxy-agent, others through hpagent's CONNECT agents
 * (@kubernetes/client-node 1.4.0 dist/config.js, createAgent).
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent, type AgentOptions } from "node:https";
import { HttpProxyAgent, HttpsProxyAgent } from "hpagent";
import { SocksProxyAgent } from "socks-proxy-agent";
import type { Connection, RequestCredentials } from "./config.ts";

const MAX_SOCKETS = 64;

export function createAgent(conn: Connection, creds: RequestCredentials): HttpAgent {
  const https = conn.server.startsWith("https:");
  const options: AgentOptions = {
    keepAlive: true,
    maxSockets: MAX_SOCKETS,
    ...conn.tls,
    ...(creds.cert === undefined ? {} : { cert: creds.cert }),
    ...(creds.key === undefined ? {} : { key: creds.key }),
  };
  const proxy = conn.proxyUrl;
  if (proxy === undefined) return https ? new HttpsAgent(options) : new HttpAgent(options);
  if (proxy.startsWith("socks")) return new SocksProxyAgent(proxy, options);
  return https
    ? new HttpsProxyAgent({ ...options, proxy })
    : new HttpProxyAgent({ ...options, proxy });
}

/** Which agent a request may share: the TLS client identity is per connection. */
export function identityOf(creds: RequestCredentials): string {
  return `${creds.cert?.toString() ?? ""}\n${creds.key?.toString() ?? ""}`;
}
