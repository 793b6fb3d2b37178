// Drives the official `pipedrive` npm client against our API, the way integrators use it.
// Prints one JSON line per step: {"step", "ok", ...}. Exit 0 when every step passed.
// Env: BASE_URL (http://host:port), API_TOKEN, NODE_PATH pointing at the installed client.
"use strict";
const { v1, v2 } = require("pipedrive");

const base = process.env.BASE_URL;
const apiKey = process.env.API_TOKEN;
const v2config = new v2.Configuration({ apiKey, basePath: `${base}/api/v2` });
const v1config = new v1.Configuration({ apiKey, basePath: `${base}/api/v1` });

let failed = false;
async function step(name, fn) {
  try {
    const result = await fn();
    console.log(JSON.stringify({ step: name, ok: true, ...result }));
    return result;
  } catch (error) {
    failed = true;
    const body = error && error.response ? error.response.data : error;
    console.log(JSON.stringify({ step: name, ok: false, error: body && (body.error || String(body)) }));
    return null;
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

(async () => {
  const organizations = new v2.OrganizationsApi(v2config);
  const persons = new v2.PersonsApi(v2config);
  const deals = new v2.DealsApi(v2config);
  const leads = new v1.LeadsApi(v1config);

  const org = await step("create_organization", async () => {
    const res = await organizations.addOrganization({
      AddOrganizationRequest: { name: "Client Test Org", visible_to: 3 },
    });
    expect(res.success === true && Number.isInteger(res.data.id), "organization id");
    return { id: res.data.id };
  });

  const person = await step("create_person", async () => {
    const res = await persons.addPerson({
      AddPersonRequest: {
        name: "Client Test Person",
        org_id: org.id,
        emails: [
          { value: "Client.Test@Example.com", primary: true, label: "work" },
          { value: "client.home@example.com", primary: false, label: "home" },
        ],
        phones: [{ value: "+3725550000", primary: true, label: "mobile" }],
        visible_to: 3,
      },
    });
    expect(res.success === true, "success");
    expect(res.data.org_id === org.id, "org_id");
    expect(res.data.emails.length === 2, "two emails");
    return { id: res.data.id, emails: res.data.emails.map((e) => e.value) };
  });

  await step("list_persons_paginated", async () => {
    let cursor;
    let pages = 0;
    const seen = [];
    do {
      const res = await persons.getPersons({ sort_by: "id", sort_direction: "asc", limit: 2, cursor });
      expect(res.success === true && Array.isArray(res.data), "list envelope");
      expect(res.additional_data && "next_cursor" in res.additional_data, "next_cursor");
      seen.push(...res.data.map((p) => p.id));
      cursor = res.additional_data.next_cursor || undefined;
      pages += 1;
    } while (cursor && pages < 25);
    expect(seen.includes(person.id), "the new person is listed");
    return { pages, seen: seen.length };
  });

  await step("get_person", async () => {
    const res = await persons.getPerson({ id: person.id });
    expect(res.data.id === person.id && res.data.name === "Client Test Person", "person");
    return { name: res.data.name };
  });

  await step("update_person", async () => {
    const res = await persons.updatePerson({
      id: person.id,
      UpdatePersonRequest: { name: "Client Test Renamed", job_title: "Buyer" },
    });
    expect(res.data.name === "Client Test Renamed", "renamed");
    return { name: res.data.name, job_title: res.data.job_title };
  });

  const deal = await step("create_deal", async () => {
    const res = await deals.addDeal({
      AddDealRequest: { title: "Client Test Deal", person_id: person.id, org_id: org.id, value: 1500, currency: "EUR" },
    });
    expect(res.data.person_id === person.id && res.data.status === "open", "deal");
    return { id: res.data.id, value: res.data.value, currency: res.data.currency };
  });

  await step("create_lead", async () => {
    const res = await leads.addLead({
      AddLeadRequest: {
        title: "Client Test Lead",
        person_id: person.id,
        organization_id: org.id,
        value: { amount: 500, currency: "EUR" },
      },
    });
    expect(typeof res.data.id === "string" && res.data.id.length === 36, "uuid id");
    return { id: res.data.id, value: res.data.value };
  });

  await step("delete_person", async () => {
    const res = await persons.deletePerson({ id: person.id });
    expect(res.success === true && res.data.id === person.id, "deleted");
    return { id: res.data.id, deal: deal && deal.id };
  });

  process.exit(failed ? 1 : 0);
})().catch((error) => {
  console.log(JSON.stringify({ step: "load", ok: false, error: String(error) }));
  process.exit(2);
});
