// The flash-sale page is static (the same for everyone on the CDN). Everything that changes comes
// from small API calls: stock and the server's clock (cacheable for a second), the buyer's order.
(function () {
  "use strict";
  const root = document.querySelector("[data-flash-sale]");
  if (!root) return;
  const saleId = root.dataset.flashSale;
  const $ = (sel) => root.querySelector(sel);
  const startsAt = Date.parse(root.dataset.starts);
  const endsAt = Date.parse(root.dataset.ends);
  let offset = 0; // server clock minus ours
  const signedIn = /(^|;\s*)bw_signed_in=1/.test(document.cookie);

  const text = (el, value) => { if (el) el.textContent = value; };
  const pad = (n) => String(n).padStart(2, "0");
  function span(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400);
    return (d ? d + " 天 " : "") + pad(Math.floor(s / 3600) % 24) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  }

  function tick() {
    const now = Date.now() + offset;
    const button = $("[data-buy]");
    if (now < startsAt) {
      text($("[data-countdown]"), "距开始 " + span(startsAt - now));
      if (button) button.disabled = true;
    } else if (now < endsAt) {
      text($("[data-countdown]"), "抢购中 · 距结束 " + span(endsAt - now));
      if (button) button.disabled = !signedIn;
    } else {
      text($("[data-countdown]"), "已结束");
      if (button) button.disabled = true;
    }
  }

  async function refresh() {
    try {
      const response = await fetch("/api/flash/" + saleId, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      offset = Date.parse(data.server_time) - Date.now();
      text($("[data-stock]"), String(data.sale.stock_left));
    } catch (_) { /* keep the last figures */ }
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

  async function follow(statusUrl) {
    for (let i = 0; i < 120; i++) {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const order = (await response.json()).order;
        const labels = { pending: "排队写入中…", confirmed: "抢购成功，订单已确认", failed: "抢购失败，名额已退回", cancelled: "订单已取消" };
        text($("[data-order-status]"), (labels[order.status] || order.status) + "（订单号 " + order.id + "）");
        root.dataset.orderResult = order.status;
        if (order.status !== "pending") return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function buy(event) {
    event.preventDefault();
    const form = event.target;
    const region = form.querySelector("[data-region-code]"); // the picker keeps the deepest choice here
    const body = {
      quantity: Number(form.quantity.value || 1),
      address: { region_code: region ? region.value : "", detail: form.detail.value, name: form.name.value, phone: form.phone.value },
    };
    const button = $("[data-buy]");
    button.disabled = true;
    try {
      const response = await fetch("/api/flash/" + saleId + "/orders", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": idempotencyKey() },
        body: JSON.stringify(body),
      });
      const data = await response.json();
      if (response.status === 202) {
        text($("[data-order-status]"), "已抢到名额，正在确认…");
        follow(data.status_url);
      } else {
        text($("[data-order-status]"), data.error ? data.error.message : "请求失败（" + response.status + "）");
        if (response.status !== 409 || data.error.code !== "request_in_flight") sessionStorage.removeItem("bw-idem-" + saleId);
      }
    } catch (_) {
      text($("[data-order-status]"), "网络错误，请重试（不会重复下单）");
    } finally {
      tick();
    }
  }

  if (signedIn) {
    $("[data-order-form]").hidden = false;
    $("[data-login-hint]").hidden = true;
    $("[data-order-form]").addEventListener("submit", buy);
  }
  refresh();
  setInterval(refresh, 2000);
  tick();
  setInterval(tick, 250);
})();
