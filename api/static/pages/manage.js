// The patient's manage page: the booking its link names (the token is the URL's fragment, never
// sent to the server), its pre-care, and cancel or move it (slots from the booking page's search).
"use strict";

(() => {
  const { _, localized, meta, call, message, el, announce, status, dayLabel, localDate, localTime } = Needlebook;
  const key = meta("needlebook-key");
  const slug = meta("needlebook-slug");
  const $ = (id) => document.getElementById(id);
  const state = { token: "", view: null, etag: null, week: 0, types: [], practitioners: new Map() };

  const token = () => decodeURIComponent(location.hash.replace(/^#/, ""));
  // An appointment's status as the patient reads it (the API's value where there are no words for it).
  const STATUSES = { booked: _("booked"), checked_in: _("checked in"), completed: _("completed"), cancelled: _("cancelled"), no_show: _("missed") };

  // The language switch keeps the manage token: the fragment, which the server never sees.
  function keepTokenInLanguageLinks() {
    for (const link of document.querySelectorAll("nav.languages a")) link.hash = location.hash;
  }

  function ended(text) {
    $("booking").hidden = true;
    $("step-slots").hidden = true;
    $("ended").hidden = false;
    $("ended-text").textContent = text;
    $("book-again").href = localized(`/book/${encodeURIComponent(slug)}`).href;
    $("ended-heading").focus();
  }

  async function load({ focus = true } = {}) {
    state.token = token();
    if (!state.token) {
      ended(_("This page needs the link from your booking confirmation."));
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
      [_("Treatment"), a.treatment_type_name],
      [_("When"), _("%(day)s, arrive at %(time)s (clinic time)", { day: dayLabel(localDate(a.starts_at)), time: localTime(a.starts_at) })],
      [_("With"), a.practitioner_name],
      [_("Where"), [clinic.name, clinic.address, a.room_name].filter(Boolean).join(_(", "))],
      [_("Status"), STATUSES[a.status] || a.status],
    ];
    $("details").replaceChildren(...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
    $("pre-care").replaceChildren(...(preCare.length ? preCare : [_("Nothing special: just arrive on time.")]).map((text) => el("li", { text })));
    $("changeable").textContent = changeable
      ? _("You can move or cancel it online until %(day)s %(time)s.", { day: dayLabel(localDate(until)), time: localTime(until) })
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
    ended(_("Your appointment is cancelled. This link no longer manages it."));
    announce(_("Your appointment is cancelled."), { focus: false, kind: "success" });
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
    status(_("Looking for free times…"));
    try {
      await loadTypes();
      const type = state.types.find((t) => t.id === a.treatment_type_id);
      if (!type) {
        announce(Needlebook.MESSAGES.not_bookable_online);
        return;
      }
      const result = await Slots.search(key, { clinicId: a.clinic_id, treatmentTypeId: a.treatment_type_id, week: state.week });
      result.slots = result.slots.filter((s) => s.starts_at !== a.starts_at || s.practitioner_id !== a.practitioner_id);
      $("week-label").textContent = _("Week of %(day)s", { day: dayLabel(result.first) });
      const count = Slots.render($("slots"), result, { type, practitioners: state.practitioners, choose: move, labelPrefix: _("Move to") });
      status(_("Free times in the week of %(day)s: %(count)s.", { day: dayLabel(result.first), count }));
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
    keepTokenInLanguageLinks();
    $("step-slots").hidden = true;
    await load({ focus: false });
    announce(
      _("Your appointment is moved to %(day)s at %(time)s. This page's address is your new link: keep it.", {
        day: dayLabel(localDate(moved.appointment.starts_at)),
        time: localTime(moved.appointment.starts_at),
      }),
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
    window.addEventListener("hashchange", () => {
      keepTokenInLanguageLinks();
      load();
    });
    keepTokenInLanguageLinks();
    load();
  });
})();
