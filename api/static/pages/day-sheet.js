// The front desk's day sheet: GET /v1/clinics/{id}/day-sheet drawn as a timeline per practitioner
// and per room, so numbing gaps and the patients seen in them show at a glance. The staff key is
// typed in and kept in this tab's sessionStorage, never embedded.
"use strict";

(() => {
  const { _, call, message, el, announce, status, localTime } = Needlebook;
  const $ = (id) => document.getElementById(id);
  const LABELS = {
    arrival: _("arrives"),
    numbing_application: _("cream"),
    numbing: _("numbing"),
    needling: _("needling"),
    procedure: _("procedure"),
    aftercare: _("aftercare"),
    turnover: _("turnover"),
  };
  const key = () => $("api-key").value.trim();

  async function loadClinics() {
    announce("");
    if (!key()) {
      announce(_("Enter a staff API key first."));
      $("api-key").focus();
      return;
    }
    sessionStorage.setItem("needlebook-staff-key", key());
    try {
      const { data } = await call(key(), "GET", "/v1/clinics?limit=100");
      $("clinic").replaceChildren(...data.data.map((c) => el("option", { value: c.id, text: `${c.name} (${c.timezone})` })));
      $("clinic").disabled = false;
      status(_("Clinics loaded: %(count)s.", { count: data.data.length }));
      $("clinic").focus();
    } catch (error) {
      announce(message(error));
    }
  }

  async function showSheet(event) {
    event.preventDefault();
    announce("");
    if ($("clinic").disabled) await loadClinics();
    if ($("clinic").disabled || !$("clinic").value) return;
    let sheet;
    try {
      const params = new URLSearchParams({ date: $("date").value });
      sheet = (await call(key(), "GET", `/v1/clinics/${encodeURIComponent($("clinic").value)}/day-sheet?${params}`)).data;
    } catch (error) {
      announce(message(error));
      return;
    }
    draw(sheet);
    $("sheet").hidden = false;
    status(_("Visits on %(date)s: %(count)s.", { date: sheet.date, count: sheet.visits.length }));
    $("sheet-heading").focus();
  }

  // The drawn span: the day's visits' first and last instants, to whole hours.
  function span(visits) {
    const times = visits.flatMap((v) => v.phases.flatMap((p) => [Date.parse(p.starts_at), Date.parse(p.ends_at)]));
    const hour = 3600000;
    return [Math.floor(Math.min(...times) / hour) * hour, Math.ceil(Math.max(...times) / hour) * hour];
  }

  function lane(label, blocks, [from, to], offsetOf) {
    const track = el("div", { class: "track" });
    for (let t = from; t <= to; t += 3600000) {
      const tick = el("span", { class: "tick", "aria-hidden": "true", text: hourLabel(t, offsetOf) });
      tick.style.insetInlineStart = `${((t - from) / (to - from)) * 100}%`;
      track.append(tick);
    }
    for (const block of blocks) {
      const start = Date.parse(block.phase.starts_at);
      const end = Date.parse(block.phase.ends_at);
      const words = { who: block.who, phase: LABELS[block.phase.name] || block.phase.name, from: localTime(block.phase.starts_at), to: localTime(block.phase.ends_at) };
      const text = _("%(who)s %(phase)s %(from)s–%(to)s", words);
      const item = el("div", {
        class: `block ${block.phase.name}${block.phase.practitioner_busy ? " busy" : ""}`,
        "data-appointment": block.visit.appointment_id,
        "data-phase": block.phase.name,
        "data-starts-at": block.phase.starts_at,
        "data-ends-at": block.phase.ends_at,
        title: text,
        role: "listitem",
        "aria-label": text,
      }, el("span", { text: _("%(who)s: %(phase)s", words) }));
      item.style.insetInlineStart = `${((start - from) / (to - from)) * 100}%`;
      item.style.width = `${Math.max(0.4, ((end - start) / (to - from)) * 100)}%`;
      item.style.top = `${1.4 + (block.row || 0) * 1.6}rem`;
      track.append(item);
    }
    track.setAttribute("role", "list");
    track.setAttribute("aria-label", label);
    const rows = Math.max(1, ...blocks.map((b) => (b.row || 0) + 1));
    track.style.height = `${1.6 + rows * 1.6}rem`;
    return el("div", { class: "lane" }, el("div", { class: "lane-label", text: label }), track);
  }

  function hourLabel(t, offsetMinutes) {
    return new Date(t + offsetMinutes * 60000).toISOString().slice(11, 16);
  }

  function offsetOf(iso) {
    const offset = iso.slice(19);
    if (!offset || offset === "Z") return 0;
    const sign = offset[0] === "-" ? -1 : 1;
    return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  }

  // Each visit on its own row within a lane, so overlapping visits (one patient numbing while the
  // practitioner sees another) are drawn one above the other.
  function rowsFor(visits) {
    const rows = new Map();
    const ends = [];
    for (const v of visits) {
      const start = Date.parse(v.phases[0].starts_at);
      let row = ends.findIndex((end) => end <= start);
      if (row === -1) row = ends.length;
      ends[row] = Math.max(...v.phases.map((p) => Date.parse(p.ends_at)));
      rows.set(v.appointment_id, row);
    }
    return rows;
  }

  function grouped(visits, pick) {
    const groups = new Map();
    for (const v of visits) {
      const { id, name } = pick(v);
      if (!groups.has(id)) groups.set(id, { name, visits: [] });
      groups.get(id).visits.push(v);
    }
    return groups;
  }

  function draw(sheet) {
    $("sheet-heading").textContent = _("Day sheet for %(date)s (%(zone)s)", { date: sheet.date, zone: sheet.timezone });
    const visits = sheet.visits;
    for (const id of ["by-practitioner", "by-room"]) $(id).replaceChildren();
    $("visits").tBodies[0].replaceChildren();
    if (!visits.length) {
      $("by-practitioner").append(el("p", { text: _("No visits on this date.") }));
      return;
    }
    const range = span(visits);
    const offset = offsetOf(visits[0].starts_at);
    for (const [, group] of grouped(visits, (v) => v.practitioner)) {
      const rows = rowsFor(group.visits);
      const blocks = group.visits.flatMap((v) =>
        v.phases.filter((p) => p.name !== "arrival" && p.name !== "turnover").map((phase) => ({ visit: v, phase, who: v.patient.name, row: rows.get(v.appointment_id) })),
      );
      $("by-practitioner").append(lane(group.name, blocks, range, offset));
    }
    for (const [, group] of grouped(visits, (v) => v.room)) {
      const rows = rowsFor(group.visits);
      const blocks = group.visits.flatMap((v) =>
        v.phases.filter((p) => p.name !== "arrival" && p.place !== "numbing_area").map((phase) => ({ visit: v, phase, who: v.patient.name, row: rows.get(v.appointment_id) })),
      );
      $("by-room").append(lane(group.name, blocks, range, offset));
    }
    for (const v of visits) {
      const phases = v.phases.map((p) => `${LABELS[p.name] || p.name} ${localTime(p.starts_at)}${p.starts_at === p.ends_at ? "" : `–${localTime(p.ends_at)}`}`).join(", ");
      $("visits").tBodies[0].append(
        el("tr", {}, ...[localTime(v.starts_at), v.patient.name, v.treatment_type.name, v.practitioner.name, v.room.name, phases].map((text) => el("td", { text }))),
      );
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("api-key").value = sessionStorage.getItem("needlebook-staff-key") || "";
    $("date").value = new Date().toISOString().slice(0, 10);
    $("load-clinics").addEventListener("click", loadClinics);
    $("sheet-form").addEventListener("submit", showSheet);
  });
})();
