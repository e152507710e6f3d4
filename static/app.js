// Times in the visitor's own zone, and a ticket page that follows its order's status.
(function () {
  "use strict";

  function showLocalTimes() {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    document.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var text = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit"
      }).format(when);
      el.textContent = text + " (" + zone.replace(/_/g, " ") + ")";
    });
  }

  function preselectBrowserZone() {
    var select = document.querySelector("select[data-default-browser-zone]");
    if (!select || select.value !== "UTC") return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (select.querySelector('option[value="' + zone + '"]')) select.value = zone;
  }

  // The buyer's own zone goes with the checkout, for the emails: the server keeps it only if it knows it.
  function fillBrowserZone() {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    document.querySelectorAll("input[data-browser-zone]").forEach(function (input) {
      if (zone) input.value = zone;
    });
  }

  function showPlatformFields() {
    var select = document.querySelector("select[name=platform]");
    if (!select) return;
    function update() {
      document.querySelectorAll("[data-platform]").forEach(function (el) {
        el.hidden = el.getAttribute("data-platform") !== select.value;
      });
    }
    select.addEventListener("change", update);
    update();
  }

  function followOrderStatus() {
    var ticket = document.querySelector("[data-status-url]");
    if (!ticket || ticket.getAttribute("data-status") !== "pending") return;
    var delay = 1000;
    function poll() {
      fetch(ticket.getAttribute("data-status-url"), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          if (body.status !== "pending") { window.location.reload(); return; }
          delay = Math.min(delay * 1.5, 10000);
          setTimeout(poll, delay);
        })
        .catch(function () { setTimeout(poll, 10000); });
    }
    setTimeout(poll, delay);
  }

  // The organiser's time only when it is not the visitor's own.
  function hideSameZone() {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    document.querySelectorAll("[data-organiser-zone]").forEach(function (el) {
      if (el.getAttribute("data-organiser-zone") === zone) el.hidden = true;
    });
  }

  // On phones the tables become one card per row: each cell is labelled with its column's heading.
  function labelTableCells() {
    document.querySelectorAll("table.list").forEach(function (table) {
      var headings = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          // A cell spanning rows (the delivery log's attendee) shifts the columns of the rows below it.
          if (row.cells.length < headings.length && cell === row.cells[0] && column === 0) {
            column = headings.length - row.cells.length;
          }
          if (!cell.hasAttribute("data-label")) cell.setAttribute("data-label", headings[column] || "");
          column += cell.colSpan || 1;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    labelTableCells();
    hideSameZone();
    showLocalTimes();
    preselectBrowserZone();
    fillBrowserZone();
    showPlatformFields();
    followOrderStatus();
  });
})();
