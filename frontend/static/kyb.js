// A change sent by htmx that the server could not make: say so where messages appear,
// since htmx leaves the page as it was.
(function () {
  "use strict";
  var MESSAGES = {
    0: "The server cannot be reached. Nothing was saved; try again in a moment.",
    403: "This page has expired. Reload it and try again.",
    404: "That was changed or deleted meanwhile. Reload the page.",
    503: "The journal cannot be reached right now. Nothing was saved; try again in a moment."
  };

  function show(status) {
    var box = document.getElementById("messages");
    if (!box) {
      return;
    }
    var line = document.createElement("p");
    line.className = "message error";
    line.textContent = MESSAGES[status] || "Something went wrong. Nothing was saved; reload the page.";
    box.replaceChildren(line);
  }

  document.addEventListener("htmx:responseError", function (event) {
    show(event.detail.xhr.status);
  });
  document.addEventListener("htmx:sendError", function () {
    show(0);
  });
})();
