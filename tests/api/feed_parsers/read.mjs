// Reads an iCalendar feed on stdin with ical.js (what most web calendars use) and node-ical;
// prints {parser: {uid: [start, end]}} with every instant in UTC (ISO 8601), for the feed tests.
import ICAL from "ical.js";
import nodeIcal from "node-ical";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const text = Buffer.concat(chunks).toString("utf8");

const icaljs = {};
const calendar = new ICAL.Component(ICAL.parse(text));
for (const zone of calendar.getAllSubcomponents("vtimezone")) ICAL.TimezoneService.register(zone);
for (const component of calendar.getAllSubcomponents("vevent")) {
  const event = new ICAL.Event(component);
  icaljs[event.uid] = [event.startDate.toJSDate().toISOString(), event.endDate.toJSDate().toISOString()];
}

const nodeical = {};
for (const item of Object.values(nodeIcal.sync.parseICS(text))) {
  if (item.type === "VEVENT") nodeical[item.uid] = [item.start.toISOString(), item.end.toISOString()];
}
console.log(JSON.stringify({ "ical.js": icaljs, "node-ical": nodeical }));
