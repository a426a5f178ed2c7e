// The upload page: everything the server sends back is shown with textContent (names are data, never markup).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const maxBytes = Number(form.dataset.maxBytes);
  const semanticMax = Number(form.dataset.semanticMax);
  let polling = null;

  function mode() {
    return form.querySelector('input[name="semantic-mode"]:checked').value;
  }

  function showMode() {
    $("semantic-file-box").hidden = mode() !== "file";
    $("semantic-form-box").hidden = mode() !== "form";
  }

  function say(text, kind) {
    const m = $("message");
    m.textContent = text;
    m.className = "message " + (kind || "info");
    m.hidden = false;
  }

  function fmtMiB(n) {
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function intOrNull(id) {
    const v = $(id).value.trim();
    return v === "" ? null : Number(v);
  }

  // The semantic part of the request: "" (the zip ships one), the user's JSON file, or the form as JSON.
  async function semanticText() {
    if (mode() === "zip") return "";
    if (mode() === "file") {
      const f = $("semantic-file").files[0];
      if (!f) throw new Error("choose the semantic JSON file, or pick another option");
      if (f.size > semanticMax) throw new Error(f.name + " is " + f.size + " bytes; a semantic specification is at most " + semanticMax);
      return await f.text();
    }
    const scenarios = Array.from($("f-scenarios").querySelectorAll("input:checked")).map((o) => o.value);
    return JSON.stringify({
      name: $("f-name").value,
      description: $("f-description").value,
      data_type: $("f-data-type").value,
      task_type: $("f-task-type").value,
      library_type: $("f-library-type").value,
      scenarios: scenarios.length ? scenarios : ["Others"],
      license: $("f-license").value,
      input_dimension: intOrNull("f-input-dimension"),
      output_dimension: intOrNull("f-output-dimension"),
    });
  }

  async function answer(resp) {
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      const why = body && typeof body.error === "string" ? body.error : "the dock answered " + resp.status;
      throw new Error(why);
    }
    return body;
  }

  function showRun(run) {
    $("run-name").textContent = run.flow_run_name || run.flow_run_id;
    $("run-state").textContent = run.state || "Scheduled";
    const link = $("run-link");
    if (run.run_url) {
      link.href = run.run_url;
      link.hidden = false;
    } else {
      link.hidden = true;
    }
    $("run").hidden = false;
  }

  // The learnware as the market now holds it (name, registry version); absent for an INVALID submission.
  async function learnware(id, headers) {
    try {
      return await answer(await fetch("/learnwares/" + encodeURIComponent(id), { headers }));
    } catch (e) {
      return null;
    }
  }

  function showResult(run, record) {
    const r = $("result");
    r.replaceChildren();
    const status = document.createElement("strong");
    status.textContent = run.result;
    r.append(status);
    const parts = [];
    if (record && record.name) parts.push(record.name);
    if (run.reason) parts.push(run.reason);
    if (record && record.registry_uri) parts.push(record.registry_uri);
    if (parts.length) r.append(document.createTextNode(" · " + parts.join(" · ")));
    r.className = "result " + run.result.toLowerCase().replace(/[^a-z]/g, "");
    r.hidden = false;
  }

  function follow(runId, learnwareId, token) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    let tries = 0;
    const tick = async () => {
      tries += 1;
      try {
        const run = await answer(await fetch("/upload/runs/" + encodeURIComponent(runId), { headers }));
        showRun(run);
        if (run.final) {
          if (run.result) {
            showResult(run, run.result === "INVALID" ? null : await learnware(learnwareId, headers));
          } else {  // Failed or Crashed before the result was published: say so, the run's logs tell why
            showResult({ result: run.state || "Failed", reason: "no submission result; the run's logs in the Prefect UI say why" }, null);
          }
          return;
        }
      } catch (e) {
        // the next tick retries; a Prefect restart should not end the page's watch
      }
      if (tries < 900) polling = setTimeout(tick, 2000);
    };
    polling = setTimeout(tick, 1000);
  }

  async function submit(ev) {
    ev.preventDefault();
    if (polling) clearTimeout(polling);
    $("run").hidden = true;
    $("result").hidden = true;
    const button = $("submit");
    const zip = $("zip").files[0];
    const token = $("token").value.trim();
    try {
      if (!zip) throw new Error("choose a learnware zip");
      if (zip.size > maxBytes) throw new Error(zip.name + " is " + fmtMiB(zip.size) + "; the upload limit is " + fmtMiB(maxBytes));
      if (!token) throw new Error("paste the dock's API token (`lwdock api token` prints it)");
      const sem = new TextEncoder().encode(await semanticText());
      const auth = { Authorization: "Bearer " + token };
      button.disabled = true;
      say("Checking…", "info");
      const checked = await answer(await fetch("/upload/check", {
        method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: sem,
      }));
      say("Uploading " + zip.name + " (" + fmtMiB(zip.size) + ")…", "info");
      const run = await answer(await fetch("/upload?filename=" + encodeURIComponent(zip.name), {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/octet-stream", "X-Semantic-Length": String(sem.length) },
        body: new Blob([sem, zip]),
      }));
      let note = "Submitted " + run.file + ".";
      if (checked.dropped && checked.dropped.length) {
        note += " Not carried by the form: " + checked.dropped.join(", ") + " (ship semantic_specification.json in the zip to keep them).";
      }
      say(note, "ok");
      showRun(run);
      follow(run.flow_run_id, run.learnware_id, token);
    } catch (e) {
      say(String(e && e.message ? e.message : e), "error");
    } finally {
      button.disabled = false;
    }
  }

  form.querySelectorAll('input[name="semantic-mode"]').forEach((r) => r.addEventListener("change", showMode));
  form.addEventListener("submit", submit);
  showMode();
})();
