"""A small ValidMind simulator: the backend API Atryum uses, an admin surface, fault injection.

* `state.SimState` — the in-memory inventory (thread-safe) and the active faults;
* `app.create_sim_app` / `app.SimServer` / `app.serve` — the FastAPI app and ways to serve it;
* `notify.Notifier` — tells Atryum about record changes (sync call or signed change event);
* `demo_seed.json` — the demo inventory used by `atryum demo` and `atryum vm-sim`.
"""
