// The headers that make the page cross-origin isolated (crossOriginIsolated true), which the
// threaded wasm backend needs for SharedArrayBuffer. Every file of the page is served with them.
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
