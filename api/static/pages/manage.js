// The patient's manage page: the booking its link names (the token is the URL's fragment, never
// sent to the server), its pre-care, and cancel or move it (slots from the booking page's search).
"use strict";

(() => {
  const { meta, call, message, el, announce, status, dayLabel, localDate, localTime } = Needlebook;
  const key = meta("needlebook-key");
  const slug = meta("needlebook-slug");
  const $ = (id) => document.getElementById(id);
  const state = { token: "", view: null, etag: null, week: 0, types: [], practitioners: new Map() };

  const token = () => decodeURIComponent(location.hash.replace(/^#/, ""));

  function ended(text) {
    $("booking").hidden = true;
    $("step-slots").hidden = true;
    $("ended").hidden = false;
    $("ended-text").textContent = text;
    $("book-again").href = `/book/${encodeURIComponent(slug)}`;
    $("ended-heading").focus();
  }

  async function load({ focus = true } = {}) {
    state.token = token();
    if (!state.token) {
      ended("This page needs the link from your booking confirmation.");
      return;
    }
    let answer;
    try {
      answer = await call(key, "GET", `/v1/manage/${encodeURIComponent(state.token)}`);
    } catch (error) {
      if (error.status === 404 || error.status === 410) ended(message(error));
      else announce(message(error));
      return;
    }
    state.view = answer.data;
    state.etag = answer.etag;
    render();
    if (focus) $("booking-heading").focus();
  }

  function render() {
    const { appointment: a, clinic, pre_care: preCare, changeable, changeable_until: until } = state.view;
    const rows = [
      ["Treatment", a.treatment_type_name],
      ["When", `${dayLabel(localDate(a.starts_at))}, arrive at ${localTime(a.starts_at)} (clinic time)`],
      ["With", a.practitioner_name],
      ["Where", `${clinic.name}${clinic.address ? `, ${clinic.address}` : ""}, ${a.room_name}`],
      ["Status", a.status],
    ];
    $("details").replaceChildren(...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
    $("pre-care").replaceChildren(...(preCare.length ? preCare : ["Nothing special: just arrive on time."]).map((text) => el("li", { text })));
    $("changeable").textContent = changeable
      ? `You can move or cancel it online until ${dayLabel(localDate(until))} ${localTime(until)}.`
      : Needlebook.MESSAGES.cancellation_window_passed;
    $("actions").hidden = !changeable;
    $("confirm-cancel").hidden = true;
    $("booking").hidden = false;
    $("ended").hidden = true;
  }

  async function cancel() {
    $("cancel-yes").disabled = true;
    try {
      await call(key, "POST", `/v1/manage/${encodeURIComponent(state.token)}/cancel`, {}, state.etag ? { "If-Match": state.etag } : {});
    } catch (error) {
      $("cancel-yes").disabled = false;
      announce(message(error));
      return;
    }
    ended("Your appointment is cancelled. This link no longer manages it.");
    announce("Your appointment is cancelled.", { focus: false, kind: "success" });
  }

  async function loadTypes() {
    if (state.types.length) return;
    const [types, practitioners] = await Promise.all([
      call(key, "GET", "/v1/booking/treatment-types"),
      call(key, "GET", "/v1/booking/practitioners"),
    ]);
    state.types = types.data.data;
    for (const p of practitioners.data.data) state.practitioners.set(p.id, p.name);
  }

  async function loadSlots() {
    const a = state.view.appointment;
    $("step-slots").hidden = false;
    $("previous-week").disabled = state.week <= 0;
    status("Looking for free times…");
    try {
      await loadTypes();
      const type = state.types.find((t) => t.id === a.treatment_type_id);
      if (!type) {
        announce(Needlebook.MESSAGES.not_bookable_online);
        return;
      }
      const result = await Slots.search(key, { clinicId: a.clinic_id, treatmentTypeId: a.treatment_type_id, week: state.week });
      result.slots = result.slots.filter((s) => s.starts_at !== a.starts_at || s.practitioner_id !== a.practitioner_id);
      $("week-label").textContent = `Week of ${dayLabel(result.first)}`;
      const count = Slots.render($("slots"), result, { type, practitioners: state.practitioners, choose: move, labelPrefix: "Move to" });
      status(`${count} free time${count === 1 ? "" : "s"} in the week of ${dayLabel(result.first)}.`);
    } catch (error) {
      announce(message(error));
      return;
    }
    $("slots-heading").focus();
  }

  async function move(slot) {
    announce("");
    const body = {
      starts_at: slot.starts_at,
      procedure_starts_at: slot.procedure_starts_at,
      clinic_id: slot.clinic_id,
      practitioner_id: slot.practitioner_id,
      room_id: slot.room_id,
    };
    let moved;
    try {
      moved = (
        await call(key, "POST", `/v1/manage/${encodeURIComponent(state.token)}/reschedule`, body, state.etag ? { "If-Match": state.etag } : {})
      ).data;
    } catch (error) {
      announce(message(error));
      if (error.code === "slot_unavailable") await loadSlots();
      return;
    }
    // The moved booking has a link of its own; the old one has ended.
    history.replaceState(null, "", `#${encodeURIComponent(moved.manage_token)}`);
    $("step-slots").hidden = true;
    await load({ focus: false });
    announce(
      `Your appointment is moved to ${dayLabel(localDate(moved.appointment.starts_at))} at ${localTime(moved.appointment.starts_at)}. This page's address is your new link: keep it.`,
      { kind: "success" },
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("cancel").addEventListener("click", () => {
      $("confirm-cancel").hidden = false;
      $("cancel-no").focus();
    });
    $("cancel-no").addEventListener("click", () => {
      $("confirm-cancel").hidden = true;
      $("cancel").focus();
    });
    $("cancel-yes").addEventListener("click", cancel);
    $("reschedule").addEventListener("click", () => {
      state.week = 0;
      loadSlots();
    });
    $("keep-time").addEventListener("click", () => {
      $("step-slots").hidden = true;
      $("reschedule").focus();
    });
    $("previous-week").addEventListener("click", () => {
      state.week = Math.max(0, state.week - 1);
      loadSlots();
    });
    $("next-week").addEventListener("click", () => {
      state.week += 1;
      loadSlots();
    });
    window.addEventListener("hashchange", () => load());
    load();
  });
})();
