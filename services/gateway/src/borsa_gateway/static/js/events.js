// Live events from GET /api/v1/events: server-sent events read with fetch() and a stream reader, because
// EventSource cannot send the Authorization header. Reconnects after a drop, with a growing pause.
import { session } from "./api.js";

export function connectEvents({ onEvent, onState }) {
  const controller = new AbortController();
  let retryMs = 1000;
  let stopped = false;

  async function run() {
    while (!stopped) {
      onState("connecting");
      try {
        const response = await fetch("/api/v1/events", {
          headers: { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" },
          signal: controller.signal,
          cache: "no-store",
        });
        if (response.status === 401) {
          onState("offline");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        await read(response.body.getReader());
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
      }
      onState("offline");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, 30_000);
    }
  }

  async function read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        dispatch(block);
      }
    }
  }

  function dispatch(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        if (line.startsWith(": connected")) {
          retryMs = 1000;
          onState("live");
        }
        continue;
      }
      const colon = line.indexOf(":");
      const fieldName = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (fieldName === "event") name = value;
      else if (fieldName === "data") data.push(value);
    }
    if (!data.length) return;
    try {
      onEvent(name, JSON.parse(data.join("\n")));
    } catch (error) {
      console.warn("skipped an event", error);
    }
  }

  run();
  return {
    close() {
      stopped = true;
      controller.abort();
    },
  };
}
