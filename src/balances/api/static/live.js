// Live rows of the dashboard: follows /stream/balances for the address shown and
// updates the rows its changes touch, marking each. The page is complete without
// this script; it only keeps the table current. Amounts stay exact (BigInt), as the
// server renders them; text is set with textContent only.
(function () {
  "use strict";

  var section = document.querySelector("section.balances[data-stream]");
  if (!section || !window.EventSource) {
    return;
  }
  var status = section.querySelector(".live-status");
  var notice = section.querySelector(".live-notice");
  var lastSeq = -1;
  var unseen = {};

  function setStatus(state, text) {
    if (status) {
      status.dataset.state = state;
      status.textContent = text;
    }
  }

  function say(text) {
    if (notice) {
      notice.textContent = text;
      notice.hidden = false;
    }
  }

  function grouped(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // base units -> the display amount, as the server formats it (every digit).
  function amountText(amount, decimals) {
    if (amount === null) {
      return "unknown";
    }
    if (decimals === "") {
      return grouped(amount) + " base units";
    }
    var places = parseInt(decimals, 10);
    if (places === 0) {
      return grouped(amount);
    }
    var padded = amount.padStart(places + 1, "0");
    return grouped(padded.slice(0, -places)) + "." + padded.slice(-places);
  }

  // amount / 10^decimals * price, in cents, rounded half to even (Decimal.quantize).
  function dollars(amount, decimals, price) {
    if (amount === null || decimals === "" || price === "") {
      return null;
    }
    var parts = price.split(".");
    var fraction = parts[1] || "";
    var numerator = BigInt(amount) * BigInt(parts[0] + fraction) * 100n;
    var denominator = 10n ** BigInt(parseInt(decimals, 10) + fraction.length);
    var cents = numerator / denominator;
    var rest = numerator % denominator;
    if (2n * rest > denominator || (2n * rest === denominator && cents % 2n === 1n)) {
      cents += 1n;
    }
    var whole = (cents / 100n).toString();
    var part = (cents % 100n).toString().padStart(2, "0");
    return "$" + grouped(whole) + "." + part;
  }

  function rowOf(token) {
    var rows = section.querySelectorAll("tr.balance");
    for (var i = 0; i < rows.length; i += 1) {
      var id = rows[i].dataset.token;
      if (id === token || id === token.split("::")[0]) {
        return rows[i];
      }
    }
    return null;
  }

  function apply(entry) {
    if (entry.seq <= lastSeq) {
      return; // a resume never repeats, but a second look costs nothing
    }
    lastSeq = entry.seq;
    var row = rowOf(entry.token);
    if (!row) {
      unseen[entry.token] = true;
      say("New tokens arrived (" + Object.keys(unseen).join(", ") + "): reload to see them.");
      return;
    }
    var retracted = entry.type === "retraction";
    row.dataset.amount = entry.amount === null ? "" : entry.amount;
    row.dataset.seq = String(entry.seq);
    row.querySelector("td.amount").textContent = amountText(entry.amount, row.dataset.decimals);
    row.querySelector("td.block").textContent =
      entry.block_height === null ? "—" : String(entry.block_height);
    var value = dollars(entry.amount, row.dataset.decimals, row.dataset.price);
    var usd = row.querySelector("td.usd");
    if (value !== null) {
      usd.textContent = value;
      usd.classList.remove("is-outdated");
    } else {
      usd.classList.add("is-outdated");
      usd.title = "the value as the page was loaded";
    }
    var fresh = row.querySelector("td.fresh");
    fresh.textContent = retracted ? "undone by a reorg" : "just now";
    var badge = row.querySelector(".badge.source");
    badge.textContent = "stream";
    badge.className = "badge source source-stream";
    row.classList.remove("is-stale", "is-changed");
    row.classList.toggle("is-retracted", retracted);
    void row.offsetWidth; // restart the flash on a second change
    row.classList.add("is-changed");
    row.title = (retracted ? "retracted" : "changed") + " at block " + entry.block_height;
    var total = document.querySelector(".summary .total");
    if (total) {
      total.classList.add("is-outdated");
      total.title = "the total as the page was loaded";
    }
  }

  var source = new EventSource(section.dataset.stream);
  setStatus("off", "connecting");
  source.onopen = function () {
    setStatus("live", "live");
  };
  source.onerror = function () {
    // EventSource reconnects by itself, resuming with Last-Event-ID.
    var closed = source.readyState === EventSource.CLOSED;
    setStatus("offline", closed ? "offline: reload to follow changes" : "reconnecting");
  };
  ["change", "retraction"].forEach(function (kind) {
    source.addEventListener(kind, function (event) {
      apply(JSON.parse(event.data));
    });
  });
  source.addEventListener("gone", function () {
    source.close();
    setStatus("offline", "offline");
    say("Changes were missed while away: reload the page.");
  });
})();
