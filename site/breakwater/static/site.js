// Per-visitor parts of pages that are the same for everyone (static files on the CDN):
// who is signed in comes from /api/auth/me; the homepage carousel turns by itself.
(function () {
  "use strict";

  async function account() {
    const nav = document.querySelector("[data-account]");
    // Only browsers that signed in ask (a plain hint cookie): anonymous views cost the app nothing.
    if (!nav || !/(^|;\s*)bw_signed_in=1/.test(document.cookie)) return;
    let me;
    try {
      const response = await fetch("/api/auth/me", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return; // 401: anonymous, the page already says 登录 / 注册
      me = await response.json();
    } catch (_) {
      return;
    }
    const user = me.user;
    const items = [];
    if (user.role === "editor" || user.role === "admin") {
      const editor = document.createElement("a");
      editor.href = "/editor";
      editor.textContent = "编辑后台";
      items.push(editor);
    }
    const orders = document.createElement("a");
    orders.href = "/orders";
    orders.textContent = "我的订单";
    items.push(orders);
    const who = document.createElement("span");
    who.className = "who";
    who.dataset.testid = "who";
    who.textContent = user.name;
    items.push(who);
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/logout";
    form.className = "inline";
    const csrf = document.createElement("input");
    csrf.type = "hidden";
    csrf.name = "csrf_token";
    csrf.value = me.csrf_token || "";
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = "退出";
    form.append(csrf, button);
    items.push(form);
    nav.replaceChildren(...items);
  }

  function carousel(root) {
    const slides = [...root.querySelectorAll(".slide")];
    const dots = [...root.querySelectorAll("[data-dot]")];
    if (slides.length < 2) return;
    let current = 0;
    const show = (i) => {
      current = (i + slides.length) % slides.length;
      slides.forEach((s, k) => s.classList.toggle("active", k === current));
      dots.forEach((d, k) => d.setAttribute("aria-current", k === current ? "true" : "false"));
    };
    dots.forEach((d) => d.addEventListener("click", () => show(Number(d.dataset.dot))));
    show(0);
    setInterval(() => show(current + 1), 5000);
  }

  // The homepage's sales: the static copy is rebuilt at every start and end; a sell-out between them
  // comes from each sale's state file (Nginx, cached a second), never from the app.
  const SALE_LABELS = { upcoming: "即将开始", live: "抢购中", sold_out: "已售罄", ended: "已结束" };
  async function saleStates() {
    const cards = [...document.querySelectorAll("[data-sale]")].filter((c) => c.dataset.state !== "ended");
    await Promise.all(cards.map(async (card) => {
      try {
        const response = await fetch("/flash/" + card.dataset.sale + "/state.json", { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const state = (await response.json()).state;
        if (!SALE_LABELS[state]) return;
        card.dataset.state = state;
        card.querySelector("[data-state-label]").textContent = SALE_LABELS[state];
      } catch (_) { /* keep the built state */ }
    }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    account();
    document.querySelectorAll("[data-carousel]").forEach(carousel);
    if (document.querySelector("[data-sale]")) {
      saleStates();
      setInterval(saleStates, 5000);
    }
  });
})();
