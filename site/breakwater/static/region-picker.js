// Province -> city -> district cascade. Each level is loaded when needed: from the content-hashed
// static files (data-root, cacheable for a year) when the page names them, else from /api/regions.
(function () {
  "use strict";

  async function load(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("regions API answered " + response.status);
    return response.json();
  }

  function fill(select, items, placeholder) {
    select.replaceChildren(new Option(placeholder, ""));
    for (const item of items) select.add(new Option(item.name, item.code));
    select.disabled = items.length === 0;
  }

  function reset(select, placeholder) {
    select.replaceChildren(new Option(placeholder, ""));
    select.disabled = true;
  }

  function init(root) {
    const [province, city, district] = ["province", "city", "district"].map(
      (level) => root.querySelector(`select[data-level="${level}"]`));
    const output = root.dataset.output ? document.querySelector(root.dataset.output) : null;
    const show = () => {
      if (!output) return;
      output.textContent = [province, city, district]
        .filter((s) => s.value)
        .map((s) => s.options[s.selectedIndex].text)
        .join(" / ");
    };

    // Static files list {regions: [{code, name, next}]}; the API lists {regions} or {children}.
    const staticRoot = root.dataset.root;
    const nextOf = {};
    const items = (data) => {
      const list = data.regions || data.children || [];
      for (const item of list) if (item.next) nextOf[item.code] = item.next;
      return list;
    };
    const children = async (code) =>
      items(await load(staticRoot && nextOf[code] ? nextOf[code] : "/api/regions/" + code));

    load(staticRoot || "/api/regions").then((data) => { fill(province, items(data), "选择省份"); province.disabled = false; });

    province.addEventListener("change", async () => {
      reset(city, "选择城市");
      reset(district, "选择区县");
      show();
      if (province.value) fill(city, await children(province.value), "选择城市");
    });
    city.addEventListener("change", async () => {
      reset(district, "选择区县");
      show();
      if (city.value) fill(district, await children(city.value), "选择区县");
    });
    district.addEventListener("change", show);
  }

  document.querySelectorAll("[data-region-picker]").forEach(init);
})();
