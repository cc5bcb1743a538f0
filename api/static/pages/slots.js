// The week's slots, shared by the booking page and the manage page's reschedule.
"use strict";

const Slots = (() => {
  const { _, el, call, localDate, localTime, dayLabel, plusMinutes } = Needlebook;

  // Monday of the week `offset` weeks from today's, as YYYY-MM-DD (the visitor's calendar).
  function weekStart(offset) {
    const today = new Date();
    const monday = new Date(Date.UTC(today.getFullYear(), today.getMonth(), today.getDate()));
    monday.setUTCDate(monday.getUTCDate() - ((monday.getUTCDay() + 6) % 7) + 7 * offset);
    return monday.toISOString().slice(0, 10);
  }
  function addDays(isoDate, days) {
    const d = new Date(`${isoDate}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  }

  // A week's search: from the week's Monday (or now) to the next Monday, a day of margin each side
  // for the clinic's zone; slots are then kept by their own local date.
  // `patientToken`: a returning patient's booking link, so the search applies their rules.
  async function search(key, { clinicId, treatmentTypeId, week, patientToken }) {
    const first = weekStart(week);
    const last = addDays(first, 7);
    const start = new Date(Math.max(Date.parse(`${addDays(first, -1)}T00:00:00Z`), Date.now())).toISOString();
    const params = new URLSearchParams({
      clinic_id: clinicId,
      treatment_type_id: treatmentTypeId,
      start,
      end: `${addDays(last, 1)}T00:00:00Z`,
      limit: "500",
    });
    if (patientToken) params.set("patient_token", patientToken);
    const { data } = await call(key, "GET", `/v1/availability?${params}`);
    const slots = data.data.filter((s) => localDate(s.starts_at) >= first && localDate(s.starts_at) < last);
    return { first, last, slots, reason: data.reason };
  }

  // What the visit looks like: arrival, the numbing cream and the needling (or the procedure).
  function phases(slot, type) {
    const parts = [_("arrive %(time)s", { time: localTime(slot.starts_at) })];
    if (type.numbing_minutes > 0) {
      parts.push(_("numbing %(from)s–%(to)s", { from: localTime(slot.starts_at), to: localTime(slot.procedure_starts_at) }));
      const needlingEnds = plusMinutes(slot.procedure_starts_at, type.procedure_minutes);
      parts.push(_("needling %(from)s–%(to)s", { from: localTime(slot.procedure_starts_at), to: localTime(needlingEnds) }));
    } else {
      const span = { from: localTime(slot.procedure_starts_at), to: localTime(plusMinutes(slot.procedure_starts_at, type.procedure_minutes)) };
      parts.push(type.kind === "consultation" ? _("consultation %(from)s–%(to)s", span) : _("appointment %(from)s–%(to)s", span));
    }
    parts.push(_("done by %(time)s", { time: localTime(slot.ends_at) }));
    return parts.join(_(", ")); // the list separator: Arabic writes «،»
  }

  // Render the week into `container`: a heading per day, a button per slot; `choose(slot)` on click.
  function render(container, result, { type, practitioners, choose, labelPrefix = _("Book") }) {
    container.replaceChildren();
    const byDay = new Map();
    for (const slot of result.slots) {
      const day = localDate(slot.starts_at);
      if (!byDay.has(day)) byDay.set(day, []);
      byDay.get(day).push(slot);
    }
    if (byDay.size === 0) {
      container.append(el("p", { class: "empty", text: _("No free times this week. Try the next week.") }));
      return 0;
    }
    for (const [day, slots] of byDay) {
      const headingId = `day-${day}`;
      const list = el("ul", { class: "slots", "aria-labelledby": headingId });
      for (const slot of slots) {
        const who = practitioners.get(slot.practitioner_id) || "";
        const when = { day: dayLabel(day), time: localTime(slot.starts_at), who, phases: phases(slot, type) };
        const description = who ? _("%(day)s %(time)s with %(who)s: %(phases)s", when) : _("%(day)s %(time)s: %(phases)s", when);
        list.append(
          el(
            "li",
            {},
            el(
              "button",
              {
                type: "button",
                class: "slot",
                "data-starts-at": slot.starts_at,
                "data-practitioner-id": slot.practitioner_id,
                "data-room-id": slot.room_id,
                "aria-label": `${labelPrefix} ${description}`,
                onclick: () => choose(slot, description),
              },
              el("span", { class: "time", text: localTime(slot.starts_at) }),
              el("span", { class: "who", text: who }),
              el("span", { class: "phases", text: phases(slot, type) }),
            ),
          ),
        );
      }
      container.append(el("section", { class: "day" }, el("h3", { id: headingId, text: dayLabel(day) }), list));
    }
    return result.slots.length;
  }

  return { search, render, phases, weekStart, addDays };
})();
