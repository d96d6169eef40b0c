// Editor pages: image fields (upload by drop or picker with a preview, or pick from the media library)
// and slugs proposed from the title. Session writes carry the page's CSRF token in X-CSRFToken.
(function () {
  "use strict";
  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";

  function kb(n) { return (n / 1000).toFixed(1) + " kB"; }

  function setImage(field, url) {
    field.querySelector("[data-image-url]").value = url;
    var preview = field.querySelector("[data-preview]");
    preview.src = url;
    preview.hidden = !url;
  }

  function upload(field, file) {
    var status = field.querySelector("[data-status]");
    status.textContent = "Uploading " + file.name + "…";
    status.classList.remove("error");
    var body = new FormData();
    body.append("file", file);
    fetch("/api/editor/media", {method: "POST", body: body, headers: {"X-CSRFToken": csrf}, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        if (!res[0]) { throw new Error((res[1].error || {}).message || "Upload failed."); }
        var m = res[1].media;
        setImage(field, m.url);
        status.textContent = "Uploaded: " + m.width + "×" + m.height + ", " + kb(m.bytes);
      })
      .catch(function (err) { status.textContent = err.message; status.classList.add("error"); });
  }

  function openLibrary(field) {
    var box = field.querySelector("[data-library]");
    if (!box.hidden) { box.hidden = true; return; }
    fetch("/api/editor/media", {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (j) {
      box.textContent = "";
      if (!j.media.length) { box.textContent = "No images uploaded yet."; }
      j.media.forEach(function (m) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "pick";
        b.title = m.original_name + " · " + m.width + "×" + m.height + " · " + kb(m.bytes) +
          (m.used_by.length ? " · used by " + m.used_by.length : "");
        var img = document.createElement("img");
        img.src = m.variants[1] || m.url;  // the smallest JPEG
        img.alt = m.original_name;
        img.loading = "lazy";
        b.appendChild(img);
        b.addEventListener("click", function () { setImage(field, m.url); box.hidden = true; });
        box.appendChild(b);
      });
      box.hidden = false;
    });
  }

  document.querySelectorAll("[data-image-field]").forEach(function (field) {
    var drop = field.querySelector("[data-drop]");
    field.querySelector("[data-file]").addEventListener("change", function (e) {
      if (e.target.files[0]) { upload(field, e.target.files[0]); }
      e.target.value = "";
    });
    ["dragenter", "dragover"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      drop.addEventListener(t, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer.files[0]) { upload(field, e.dataTransfer.files[0]); }
    });
    field.querySelector("[data-open-library]").addEventListener("click", function () { openLibrary(field); });
    field.querySelector("[data-image-url]").addEventListener("change", function (e) { setImage(field, e.target.value); });
  });

  // Slugs: proposed from the title until the editor types one; availability checked as it changes.
  var title = document.querySelector("[data-slug-source]");
  var slug = document.querySelector("[data-slug]");
  if (title && slug) {
    var status = document.querySelector("[data-slug-status]");
    var touched = slug.value !== "";
    var timer = null;
    function ask(params) {
      var q = new URLSearchParams(params);
      if (slug.dataset.articleId) { q.set("article_id", slug.dataset.articleId); }
      return fetch("/api/editor/slug?" + q.toString(), {credentials: "same-origin"}).then(function (r) { return r.json(); });
    }
    function show(answer) {
      if (!answer.slug) { status.textContent = ""; return; }
      status.textContent = !answer.valid ? "Use lowercase letters, digits and single hyphens."
        : answer.available ? "“" + answer.slug + "” is free." : "“" + answer.slug + "” is already taken.";
      status.classList.toggle("error", !(answer.valid && answer.available));
    }
    title.addEventListener("input", function () {
      if (touched) { return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        ask({title: title.value}).then(function (a) {
          if (touched) { return; }
          slug.value = a.proposal || "";
          show(a);
        });
      }, 200);
    });
    slug.addEventListener("input", function () {
      touched = slug.value !== "";
      clearTimeout(timer);
      timer = setTimeout(function () { ask({slug: slug.value}).then(show); }, 200);
    });
  }
})();
