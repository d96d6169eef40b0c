// Province -> city -> district -> street/township cascade. Each level is loaded when needed: from the
// content-hashed static files (data-root, cacheable for a year) when the page names them, else from
// /api/regions. Children go into the select of their own level (东莞市's towns sit right below the
// city, so its district select hides); the street select shows only where the data has streets.
(function () {
  "use strict";

  const LEVELS = ["province", "city", "district", "street"];
  const PLACEHOLDERS = { province: "选择省份", city: "选择城市", district: "选择区县", street: "选择街道/乡镇" };

  async function load(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("regions API answered " + response.status);
    return response.json();
  }

  function init(root) {
    const selects = Object.fromEntries(
      LEVELS.map((level) => [level, root.querySelector(`select[data-level="${level}"]`)]));
    const codeInput = root.querySelector("[data-region-code]");
    const output = root.dataset.output ? document.querySelector(root.dataset.output) : null;

    const reset = (level) => {
      const select = selects[level];
      select.replaceChildren(new Option(PLACEHOLDERS[level], ""));
      select.disabled = true;
      select.hidden = level === "street";
    };
    const fill = (level, items) => {
      const select = selects[level];
      select.replaceChildren(new Option(PLACEHOLDERS[level], ""));
      for (const item of items) select.add(new Option(item.name, item.code));
      select.disabled = items.length === 0;
      select.hidden = false;
    };
    const show = () => {
      const chosen = LEVELS.map((l) => selects[l]).filter((s) => !s.hidden && s.value);
      if (codeInput) codeInput.value = chosen.length ? chosen[chosen.length - 1].value : "";
      if (output) output.textContent = chosen.map((s) => s.options[s.selectedIndex].text).join(" / ");
    };

    // Static files list {regions: [{code, name, level, next}]}; the API lists {regions} or {children}.
    const staticRoot = root.dataset.root;
    const nextOf = {};
    const items = (data) => {
      const list = data.regions || data.children || [];
      for (const item of list) if (item.next) nextOf[item.code] = item.next;
      return list;
    };
    const children = async (code) =>
      items(await load(staticRoot && nextOf[code] ? nextOf[code] : "/api/regions/" + code));

    load(staticRoot || "/api/regions").then((data) => {
      fill("province", items(data));
      selects.province.disabled = false;
    });

    LEVELS.forEach((level, depth) => {
      const select = selects[level];
      select.addEventListener("change", async () => {
        const below = LEVELS.slice(depth + 1);
        below.forEach(reset);
        show();
        const code = select.value;
        if (!code || below.length === 0) return;
        const list = await children(code);
        if (select.value !== code || list.length === 0) return; // changed meanwhile, or a final choice
        const at = below.indexOf(list[0].level);
        if (at < 0) return;
        // Levels the data skips (a city without districts) hide; the others stay as they are.
        for (const skipped of below.slice(0, at)) selects[skipped].hidden = true;
        fill(below[at], list);
      });
    });
  }

  document.querySelectorAll("[data-region-picker]").forEach(init);
})();
