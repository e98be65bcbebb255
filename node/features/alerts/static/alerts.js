// Live alerts (M8): follow /alerts/events; on a change show the banner, refresh the list and,
// if the person turned the sound on, play a short tone. Pages work without this script.
(function () {
  "use strict";
  var banner = document.getElementById("alert-live");
  var list = document.getElementById("alert-list");
  var soundBox = document.getElementById("alert-sound");
  var toggle = document.getElementById("alert-sound-toggle");
  var KEY = "minga.alertSound";
  var audio = null;
  var last = null;

  function soundOn() {
    try { return window.localStorage.getItem(KEY) === "on"; } catch (e) { return false; }
  }
  function label() {
    if (toggle) { toggle.textContent = soundOn() ? toggle.dataset.on : toggle.dataset.off; }
  }
  function tone() {
    if (!soundOn()) { return; }
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35].forEach(function (start) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.frequency.value = 880;
        gain.gain.value = 0.2;
        osc.connect(gain);
        gain.connect(audio.destination);
        osc.start(audio.currentTime + start);
        osc.stop(audio.currentTime + start + 0.2);
      });
    } catch (e) { /* no audio: the banner is enough */ }
  }
  function refreshList() {
    if (!list) { return; }
    fetch("/alerts/fragment", { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) { if (html !== null) { list.innerHTML = html; } });
  }
  function announce() {
    if (banner) {
      banner.textContent = banner.dataset.text + " ";
      if (!list) {
        var again = document.createElement("a");
        again.href = window.location.pathname;
        again.textContent = "\u21bb";
        banner.appendChild(again);
      }
      banner.hidden = false;
    }
    refreshList();
    tone();
  }

  if (soundBox && toggle) {
    soundBox.hidden = false;
    label();
    toggle.addEventListener("click", function () {
      try { window.localStorage.setItem(KEY, soundOn() ? "off" : "on"); } catch (e) { /* private mode */ }
      label();
      tone();
    });
  }
  if (!window.EventSource) { return; }
  var events = new EventSource("/alerts/events");
  events.addEventListener("alerts", function (message) {
    var state = JSON.parse(message.data);
    var key = JSON.stringify(state.alerts);
    if (last !== null && key !== last) { announce(); }
    last = key;
  });
})();
