// Upload progress on a case's evidence page (M14). With this script the attach form is sent
// with XMLHttpRequest and a <progress> bar shows how much of it has gone; once the node has
// kept the files the browser goes to the page the node answered with (the case's files).
// Without the script the form posts as usual: nothing here is needed for it to work.
(function () {
  "use strict";
  var form = document.getElementById("evidence-upload");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var status = document.getElementById("upload-status");
  if (!form || !box || !bar || !status || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  var button = form.querySelector("button[type=submit]");

  function show(percent) {
    bar.value = percent;
    bar.textContent = percent + " %";
    status.textContent = percent + " %";
  }
  function failed(problem) {
    status.textContent = problem || box.dataset.failed;
    if (button) { button.disabled = false; }
  }
  function problemIn(html) {
    try {
      var errors = new DOMParser().parseFromString(html, "text/html").querySelector(".errors");
      return errors ? errors.textContent.trim() : null;
    } catch (e) { return null; }
  }
  function go(answered) {
    var target = new URL(answered, window.location.href);
    target.hash = "";
    if (target.pathname === window.location.pathname && target.search === window.location.search) {
      window.location.hash = "files";
      window.location.reload();
    } else {
      target.hash = "files";
      window.location.assign(target.href);
    }
  }

  form.addEventListener("submit", function (event) {
    if (!form.checkValidity()) { return; }
    event.preventDefault();
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) {
        show(Math.floor(100 * progress.loaded / progress.total));
      }
    });
    request.upload.addEventListener("load", function () {
      show(100);
      status.textContent = box.dataset.sealing;
    });
    request.addEventListener("load", function () {
      if (request.status >= 200 && request.status < 300 && request.responseURL) {
        go(request.responseURL);
      } else {
        failed(problemIn(request.responseText));
      }
    });
    request.addEventListener("error", function () { failed(null); });
    request.addEventListener("abort", function () { failed(null); });
    if (button) { button.disabled = true; }
    box.hidden = false;
    show(0);
    request.send(new FormData(form));
  });
}());
