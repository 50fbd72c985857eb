"""Symbols as people and exchanges write them (`btc/usd`, `XBTUSD`, `XXBTZUSD`, `BTC-USD`, `btcusdt`) resolved to
one market, with close matches when nothing fits."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from borsa_runtime.errors import BadRequest, UnknownSymbol

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def normalize(text: str) -> str:
    return _NOT_ALNUM.sub("", text.upper())


class SymbolIndex:
    """Every spelling of every market: unified symbol, native id, the exchange's other names (Kraken's altname
    and wsname), and the same with currency aliases (Kraken's XBT for BTC), all compared without case or
    separators."""

    def __init__(
        self, markets: Mapping[str, dict], aliases: Mapping[str, str] | None = None, exchange: str = ""
    ) -> None:
        self.exchange = exchange
        self._exact: dict[str, str] = {}
        self._normal: dict[str, str] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        aliases = aliases or {}
        reverse = {unified: native for native, unified in aliases.items()}
        for symbol, market in markets.items():
            names = []
            for name in self._spellings(market, reverse):
                self._exact.setdefault(name, symbol)
                self._normal.setdefault(normalize(name), symbol)
                names.append(normalize(name))
            self._names[symbol] = tuple(dict.fromkeys(names))
        self._symbols = {normalize(s): s for s in markets}

    @staticmethod
    def _spellings(market: Mapping, reverse_aliases: Mapping[str, str]) -> Iterable[str]:
        base, quote = market.get("base") or "", market.get("quote") or ""
        yield market["symbol"]
        yield market["id"]
        info = market.get("info") or {}
        if isinstance(info, Mapping):
            for key in ("altname", "wsname", "symbol", "product_id", "name"):
                value = info.get(key)
                if isinstance(value, str) and value:
                    yield value
        if market.get("baseId") and market.get("quoteId"):
            yield f"{market['baseId']}{market['quoteId']}"
        native_base, native_quote = reverse_aliases.get(base, base), reverse_aliases.get(quote, quote)
        yield f"{native_base}/{native_quote}"

    def resolve(self, text: str | None) -> str:
        """The unified symbol for `text`, or UnknownSymbol naming up to five close matches."""
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("symbol is required: a unified symbol like BTC/USD or the exchange's own id")
        text = text.strip()
        found = self._exact.get(text) or self._normal.get(normalize(text))
        if found:
            return found
        raise UnknownSymbol(self._unknown_message(text), exchange=self.exchange or None)

    def matches(self, symbol: str, key: str) -> bool:
        """Whether normalized `key` is part of any spelling of `symbol` (a search for XBTUSD finds BTC/USD)."""
        return any(key in name for name in self._names.get(symbol, (normalize(symbol),)))

    def close_matches(self, text: str, limit: int = 5) -> list[str]:
        key = normalize(text)
        candidates = difflib.get_close_matches(key, list(self._normal), n=limit * 4, cutoff=0.5)
        out: list[str] = []
        for candidate in candidates:
            symbol = self._normal[candidate]
            if symbol not in out:
                out.append(symbol)
        # A bare base currency ("btc") suggests its markets.
        out += [s for n, s in self._symbols.items() if n.startswith(key) and s not in out]
        return out[:limit]

    def _unknown_message(self, text: str) -> str:
        where = f" on {self.exchange}" if self.exchange else ""
        matches = self.close_matches(text)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        return f"symbol {text!r} is not listed{where}{hint}"
