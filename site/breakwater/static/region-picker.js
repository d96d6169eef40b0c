// Province -> city -> district cascade. Each level is loaded from /api/regions[/<code>] when needed.
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

    load("/api/regions").then((data) => { fill(province, data.regions, "选择省份"); province.disabled = false; });

    province.addEventListener("change", async () => {
      reset(city, "选择城市");
      reset(district, "选择区县");
      show();
      if (province.value) fill(city, (await load("/api/regions/" + province.value)).children, "选择城市");
    });
    city.addEventListener("change", async () => {
      reset(district, "选择区县");
      show();
      if (city.value) fill(district, (await load("/api/regions/" + city.value)).children, "选择区县");
    });
    district.addEventListener("change", show);
  }

  document.querySelectorAll("[data-region-picker]").forEach(init);
})();
