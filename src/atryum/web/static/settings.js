// Settings → ValidMind: organization → record type → charter field pickers fed by the discovery
// API; a change of scope is previewed (who is retired, who is kept) and confirmed before saving.
"use strict";

(() => {
  const { api, showError, clearError, follow, FINISHED } = window.atryum;
  const el = (id) => document.getElementById(id);
  const form = el("settings-form");
  const orgEl = el("org");
  const typeEl = el("record-type");
  const fieldEl = el("charter-field");
  const apiKeyMode = form.dataset.authMode === "api_key";
  let current = JSON.parse(form.dataset.current);
  let fixedOrg = null; // {cuid, name} when the API key binds the organization
  let pending = null; // the changes shown in the preview, waiting for confirmation
  const seq = { types: 0, fields: 0 };

  const isLongText = (field) => /long|rich|textarea|html/i.test(field.field_type || "");

  // Fill a select; keep `selected` (adding it, marked as missing, when ValidMind no longer lists it).
  function fill(select, items, placeholder, selected) {
    select.replaceChildren(new Option(placeholder, ""));
    for (const item of items) select.add(new Option(item.label, item.value));
    if (selected && !items.some((item) => item.value === selected)) {
      select.add(new Option(`${selected} (current; not found in ValidMind)`, selected));
    }
    select.value = selected || "";
    select.disabled = false;
  }

  function reset(select, placeholder) {
    select.replaceChildren(new Option(placeholder, ""));
    select.disabled = true;
  }

  function selectedOrg() {
    if (fixedOrg) return fixedOrg;
    const option = orgEl.selectedOptions[0];
    return { cuid: orgEl.value, name: option && orgEl.value ? option.dataset.name || option.text : "" };
  }

  async function loadOrganizations() {
    clearError("discovery-error");
    let items;
    try {
      items = (await api("GET", "/api/v1/vm/organizations")).items;
    } catch (err) {
      showError("discovery-error", `Could not load the organizations from ValidMind: ${err.message}`);
      return;
    }
    if (apiKeyMode) {
      fixedOrg = items[0] ? { cuid: items[0].cuid, name: items[0].name } : null;
      if (!fixedOrg) {
        showError("discovery-error", "ValidMind lists no organization for these API-key credentials.");
        return;
      }
      orgEl.value = `${fixedOrg.name} (${fixedOrg.cuid})`;
    } else {
      fill(
        orgEl,
        items.map((o) => ({ value: o.cuid, label: `${o.name} (${o.cuid})` })),
        "Choose an organization",
        current.org_cuid,
      );
      for (const option of orgEl.options) {
        const org = items.find((o) => o.cuid === option.value);
        if (org) option.dataset.name = org.name;
      }
    }
    await loadRecordTypes();
  }

  async function loadRecordTypes() {
    const org = selectedOrg().cuid;
    reset(fieldEl, "Choose a record type first");
    if (!org) {
      reset(typeEl, "Choose an organization first");
      return;
    }
    reset(typeEl, "Loading record types…");
    const mine = ++seq.types;
    let items;
    try {
      items = (await api("GET", `/api/v1/vm/record-types?org_cuid=${encodeURIComponent(org)}`)).items;
    } catch (err) {
      if (mine === seq.types) showError("discovery-error", `Could not load the record types: ${err.message}`);
      return;
    }
    if (mine !== seq.types) return;
    const keep = org === current.org_cuid ? current.agent_record_type_slug : "";
    fill(typeEl, items.map((t) => ({ value: t.slug, label: `${t.name} (${t.slug})` })), "Choose a record type", keep);
    await loadFields();
  }

  async function loadFields() {
    const org = selectedOrg().cuid;
    const slug = typeEl.value;
    if (!slug) {
      reset(fieldEl, "Choose a record type first");
      return;
    }
    reset(fieldEl, "Loading fields…");
    const mine = ++seq.fields;
    const query = `org_cuid=${encodeURIComponent(org)}&primary_record_type_slug=${encodeURIComponent(slug)}`;
    let items;
    try {
      items = (await api("GET", `/api/v1/vm/custom-fields?${query}`)).items;
    } catch (err) {
      if (mine === seq.fields) showError("discovery-error", `Could not load the custom fields: ${err.message}`);
      return;
    }
    if (mine !== seq.fields) return;
    const ordered = [...items.filter(isLongText), ...items.filter((f) => !isLongText(f))];
    const options = ordered.map((f) => ({
      value: f.key,
      label: `${f.name} (${f.key}) — ${isLongText(f) ? "long text" : f.field_type}`,
    }));
    const keep = items.some((f) => f.key === current.charter_field_key) ? current.charter_field_key : "";
    fill(fieldEl, options, "Choose the charter field", keep);
  }

  function collect() {
    const org = selectedOrg();
    const changes = {
      org_cuid: org.cuid,
      org_name: org.name,
      agent_record_type_slug: typeEl.value,
      charter_field_key: fieldEl.value,
    };
    for (const key of ["interval_seconds", "max_removals", "max_removal_ratio"]) {
      const raw = el(key).value.trim();
      if (raw) changes[key] = Number(raw);
    }
    return changes;
  }

  function names(listId, countId, agents) {
    el(countId).textContent = String(agents.length);
    const items = agents.map((a) => {
      const li = document.createElement("li");
      li.textContent = a.name;
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "none";
      items.push(li);
    }
    el(listId).replaceChildren(...items);
  }

  function scopeText(org, slug) {
    return org ? `${org} / ${slug}` : "(not configured)";
  }

  async function showPreview(changes) {
    const preview = await api("POST", "/api/v1/settings/preview", changes);
    pending = changes;
    el("preview-summary").textContent =
      `The sync scope changes from ${scopeText(current.org_name || current.org_cuid, current.agent_record_type_slug)} ` +
      `to ${scopeText(changes.org_name || changes.org_cuid, changes.agent_record_type_slug)}.`;
    names("preview-retire", "preview-retire-count", preview.retire);
    names("preview-keep", "preview-keep-count", preview.keep);
    // Held like a sync run that retires too many: the operator reviews the list, then allows.
    const held = el("preview-held");
    held.hidden = !preview.held_reason;
    held.textContent = preview.held_reason
      ? `Held: ${preview.held_reason}. Review who would be retired, then allow it.`
      : "";
    el("confirm-save").textContent = preview.held_reason ? "Allow these retirements and save" : "Confirm and save";
    el("saved").hidden = true;
    el("preview").hidden = false;
    el("preview").focus();
  }

  async function save(changes) {
    const result = await api("PUT", "/api/v1/settings", changes);
    current = {
      org_cuid: result.org_cuid,
      org_name: result.org_name,
      agent_record_type_slug: result.agent_record_type_slug,
      charter_field_key: result.charter_field_key,
    };
    dismissPreview();
    const parts = [`Scope: ${scopeText(result.org_name || result.org_cuid, result.agent_record_type_slug)}, charter field ${result.charter_field_key}.`];
    if (result.retired.length) parts.push(`Retired: ${result.retired.map((a) => a.name).join(", ")}.`);
    if (result.kept.length) parts.push(`Kept (something depends on them): ${result.kept.map((a) => a.name).join(", ")}.`);
    el("saved-summary").textContent = parts.join(" ");
    el("saved-run").hidden = !result.sync_run_id;
    if (result.sync_run_id) {
      const status = el("saved-run-status");
      el("saved-run-link").href = `/ui/sync/runs/${encodeURIComponent(result.sync_run_id)}?started=1`;
      status.textContent = "queued";
      follow(result.sync_run_id, (s) => {
        status.textContent = s;
        status.className = `badge badge-status badge-${s}`;
        if (FINISHED.has(s)) el("saved-run-link").href = `/ui/sync/runs/${encodeURIComponent(result.sync_run_id)}`;
      });
    }
    el("saved").hidden = false;
    el("saved").focus();
  }

  async function submit(event) {
    event.preventDefault();
    clearError("settings-error");
    const changes = collect();
    const missing = [
      [changes.org_cuid, "an organization"],
      [changes.agent_record_type_slug, "a record type"],
      [changes.charter_field_key, "a charter field"],
    ].filter(([value]) => !value);
    if (missing.length) {
      showError("settings-error", `Choose ${missing.map(([, what]) => what).join(", ")} first.`);
      return;
    }
    const scopeChanged =
      changes.org_cuid !== current.org_cuid || changes.agent_record_type_slug !== current.agent_record_type_slug;
    try {
      if (scopeChanged) await showPreview(changes);
      else await save(changes);
    } catch (err) {
      showError("settings-error", err.message);
    }
  }

  async function confirmSave() {
    clearError("settings-error");
    try {
      await save({ ...pending, allow_removals: true }); // the operator confirmed this preview
    } catch (err) {
      el("preview").hidden = true;
      showError("settings-error", err.message);
    }
  }

  function dismissPreview() {
    pending = null;
    el("preview").hidden = true;
  }

  function cancel() {
    dismissPreview();
    el("save-settings").focus();
  }

  if (!apiKeyMode) orgEl.addEventListener("change", loadRecordTypes);
  typeEl.addEventListener("change", loadFields);
  form.addEventListener("input", dismissPreview);
  form.addEventListener("submit", submit);
  el("confirm-save").addEventListener("click", confirmSave);
  el("cancel-save").addEventListener("click", cancel);
  loadOrganizations();
})();
