// Reads shared by the pages, kept briefly so moving between pages does not ask the API again at once.
import { get } from "./api.js";

const TTL_MS = 30_000;
const cache = new Map();

function cached(key, load, ttl = TTL_MS) {
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < ttl) return hit.value;
  const value = load();
  cache.set(key, { at: Date.now(), value });
  value.catch(() => cache.delete(key));
  return value;
}

export const exchanges = () => cached("exchanges", () => get("/exchanges"), 15_000);
export const strategies = () => cached("strategies", () => get("/strategies"), 300_000);
export const markets = (exchange) =>
  cached(`markets:${exchange}`, () => get(`/exchanges/${encodeURIComponent(exchange)}/markets`), 60_000);
