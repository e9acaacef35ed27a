// PEM text in the browser: split into blocks and spot private keys, which are refused here,
// before anything is sent (the API refuses them too).

const BLOCK = /-----BEGIN ([^\r\n-]{0,200})-----[\s\S]*?(?:-----END \1-----|$)/g;
const KEY_LINE = /-----BEGIN [^\r\n-]*PRIVATE KEY-----/;

export function hasPrivateKey(text) {
  return KEY_LINE.test(text);
}

// Every block, in order; `isKey` marks private keys (which the caller must drop).
export function splitBlocks(text) {
  return [...text.matchAll(BLOCK)].map((m) => ({
    label: m[1].trim(),
    text: m[0].trim() + "\n",
    isKey: m[1].includes("PRIVATE KEY"),
  }));
}

// The text with every private-key block removed (the rest as it was).
export function withoutKeys(text) {
  return text.replace(BLOCK, (block, label) => (label.includes("PRIVATE KEY") ? "" : block))
    .replace(/\n{3,}/g, "\n\n").trim();
}

// SHA-256 of a certificate block's DER, in the API's form (lower-case hex), or null.
export async function fingerprint(block) {
  const body = block.replace(/-----(BEGIN|END)[^\n]*-----/g, "").replace(/\s+/g, "");
  let der;
  try {
    der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
  if (!crypto.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
