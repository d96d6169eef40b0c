// The flash-sale page is static (the same for everyone on the CDN). Its live parts come from
// /flash/<id>/state.json, a small file Nginx serves (rewritten every half second by flash-markers,
// cached for a second): the state, the stock left and the server's clock. The app is asked only
// for the signed-in buyer's own order.
(function () {
  "use strict";
  const root = document.querySelector("[data-flash-sale]");
  if (!root) return;
  const saleId = root.dataset.flashSale;
  const $ = (sel) => root.querySelector(sel);
  const signedIn = /(^|;\s*)bw_signed_in=1/.test(document.cookie);
  const LABELS = { upcoming: "即将开始", live: "抢购中", sold_out: "已售罄", ended: "已结束" };
  const BUTTON = { upcoming: "即将开始", live: "立即抢购", sold_out: "已售罄", ended: "已结束" };

  let startsAt = Date.parse(root.dataset.starts);
  let endsAt = Date.parse(root.dataset.ends);
  let sale = null; // the last state.json
  let offset = null; // server clock minus ours, the largest seen (a cached copy is only ever behind)
  let busy = false; // a purchase request is on its way

  const text = (el, value) => { if (el && el.textContent !== value) el.textContent = value; };
  const pad = (n) => String(n).padStart(2, "0");
  function span(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const d = Math.floor(s / 86400);
    return (d ? d + " 天 " : "") + pad(Math.floor(s / 3600) % 24) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  }

  function learnClock(serverMs, receivedAt) {
    if (!Number.isFinite(serverMs)) return;
    const sample = serverMs - receivedAt;
    if (offset === null || sample > offset) offset = sample;
  }

  // The state now: the window by the server's clock, sold out as state.json says.
  function currentState(now) {
    if (now < startsAt) return "upcoming";
    if (now >= endsAt) return "ended";
    if (!sale) return null;
    if (sale.state === "ended") return "ended";
    if (sale.state === "sold_out" || sale.stock_left <= 0) return "sold_out";
    return "live";
  }

  function tick() {
    const now = Date.now() + (offset || 0);
    const state = offset === null && !sale ? null : currentState(now);
    const button = $("[data-buy]");
    if (state) {
      root.dataset.state = state;
      text($("[data-state-label]"), LABELS[state]);
      if (state === "upcoming") text($("[data-countdown]"), "距开始 " + span(startsAt - now));
      else if (state === "live") text($("[data-countdown]"), "距结束 " + span(endsAt - now));
      else text($("[data-countdown]"), state === "sold_out" ? "本场商品已被抢光" : "本场抢购已结束");
    }
    if (sale) text($("[data-stock]"), String(Math.max(0, sale.stock_left)));
    if (button) {
      const open = state === "live" && sale && sale.stock_left > 0;
      button.disabled = !(open && signedIn) || busy;
      text(button, busy ? "提交中…" : BUTTON[state] || "立即抢购");
    }
  }

  async function refresh() {
    const sent = Date.now();
    try {
      const response = await fetch("/flash/" + saleId + "/state.json", { headers: { Accept: "application/json" }, cache: "no-cache" });
      const received = Date.now();
      if (!response.ok) {
        learnClock(Date.parse(response.headers.get("Date") || ""), (sent + received) / 2);
        return;
      }
      const data = await response.json();
      learnClock(Date.parse(data.server_time), received);
      sale = data;
      startsAt = Date.parse(data.starts_at) || startsAt;
      endsAt = Date.parse(data.ends_at) || endsAt;
    } catch (_) { /* keep the last figures */ }
    tick();
  }

  const ORDER_LABELS = { pending: "排队确认中…", confirmed: "抢购成功，订单已确认", failed: "抢购失败，名额已退回", cancelled: "订单已取消" };
  function showOrder(order) {
    root.dataset.orderResult = order.status;
    text($("[data-order-status]"), (ORDER_LABELS[order.status] || order.status) + "（订单号 " + order.id + "）");
  }

  async function follow(statusUrl) {
    for (let i = 0; i < 300; i++) {
      try {
        const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (response.ok) {
          const order = (await response.json()).order;
          showOrder(order);
          if (order.status !== "pending") return;
        }
      } catch (_) { /* try again */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  // After a reload: the buyer's last order in this sale (the one placed from this browser first).
  async function myOrder() {
    const remembered = localStorage.getItem("bw-order-" + saleId);
    try {
      if (remembered) {
        const mine = await fetch("/api/orders/" + encodeURIComponent(remembered), { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (mine.ok) return follow("/api/orders/" + encodeURIComponent(remembered));
        localStorage.removeItem("bw-order-" + saleId); // another buyer's, or gone
      }
      const response = await fetch("/api/orders", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const order = (await response.json()).orders.find((o) => String(o.sale_id) === saleId);
      if (order) (order.status === "pending" ? follow("/api/orders/" + order.id) : showOrder(order));
    } catch (_) { /* nothing to show */ }
  }

  function idempotencyKey() {
    const name = "bw-idem-" + saleId;
    let key = sessionStorage.getItem(name);
    if (!key) {
      key = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());
      sessionStorage.setItem(name, key);
    }
    return key;
  }

  async function buy(event) {
    event.preventDefault();
    const form = event.target;
    const region = form.querySelector("[data-region-code]"); // the picker keeps the deepest choice here
    const body = {
      quantity: Number(form.quantity.value || 1),
      address: { region_code: region ? region.value : "", detail: form.detail.value, name: form.name.value, phone: form.phone.value },
    };
    busy = true;
    tick();
    try {
      const response = await fetch("/api/flash/" + saleId + "/orders", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": idempotencyKey() },
        body: JSON.stringify(body),
      });
      const data = await response.json();
      if (response.ok && data.order_id) {
        showOrder({ id: data.order_id, status: data.status || "pending" });
        localStorage.setItem("bw-order-" + saleId, data.order_id);
        if (data.status === "pending") follow(data.status_url);
      } else {
        text($("[data-order-status]"), data.error ? data.error.message : "请求失败（" + response.status + "）");
        if (response.status !== 409 || data.error.code !== "request_in_flight") sessionStorage.removeItem("bw-idem-" + saleId);
      }
    } catch (_) {
      text($("[data-order-status]"), "网络错误，请重试（不会重复下单）");
    } finally {
      busy = false;
      refresh();
    }
  }

  if (signedIn) {
    $("[data-order-form]").hidden = false;
    $("[data-login-hint]").hidden = true;
    $("[data-order-form]").addEventListener("submit", buy);
    myOrder();
  }
  refresh();
  setInterval(refresh, 1000);
  setInterval(tick, 250);
})();
