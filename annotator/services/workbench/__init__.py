"""The coding workbench's services (`annotator serve`, `annotator coders`, `annotator assign`): the web pages and
the CLI call these, never the database.

- `accounts`: who may sign in (a personal link whose token is stored only as its hash), with which role;
- `assign`: each human coder's queue, with the overlap every coder gets (for reliability);
- `coding`: the next document of a queue, a code (one transaction, idempotent), skip, undo, progress;
- `dashboard`: the lead's view: progress per coder and human-human agreement on the overlap as it fills.
"""
