"""coders add | list | revoke | link, assign, serve: the coding workbench (`annotator.services.workbench`)."""

from __future__ import annotations

import ipaddress

import typer

from annotator.cli.common import console, get_project, print_json, table

coders_app = typer.Typer(
    help="Human coders who code in the browser (`annotator serve`).", no_args_is_help=True
)
DEFAULT_PORT = 8765


review_app = typer.Typer(
    help="Disagreement review notes (made on the workbench's review pages).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(coders_app, name="coders")
    app.command("assign")(assign)
    app.command("adjudicate")(adjudicate)
    app.add_typer(review_app, name="review")
    app.command("serve")(serve)


def _link(base: str, path: str) -> str:
    return base.rstrip("/") + path


@coders_app.command("add")
def coders_add(
    name: str = typer.Argument(..., help="The coder's name (as its codes will be stored)."),
    role: str = typer.Option(
        "coder", "--role", help="coder (codes its own queue) or lead (also the dashboard)."
    ),
    url: str = typer.Option(
        f"http://127.0.0.1:{DEFAULT_PORT}", "--url", help="The server's address, for the link."
    ),
) -> None:
    """Add a coder and print its personal sign-in link (shown once; only its hash is stored)."""
    from annotator.services.workbench.accounts import add_coder

    made = add_coder(get_project(), name, role)
    console.print(f"Added {made.name} ({made.role}). Personal sign-in link (give it to {made.name} only):")
    print(_link(url, made.path))


@coders_app.command("link")
def coders_link(
    name: str = typer.Argument(..., help="The coder."),
    url: str = typer.Option(
        f"http://127.0.0.1:{DEFAULT_PORT}", "--url", help="The server's address, for the link."
    ),
) -> None:
    """A new sign-in link for a coder; the old one stops working (and a revoked account opens again)."""
    from annotator.services.workbench.accounts import new_link

    made = new_link(get_project(), name)
    console.print(f"New sign-in link for {made.name} (the old one no longer works):")
    print(_link(url, made.path))


@coders_app.command("list")
def coders_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The coders with an account."""
    from annotator.services.workbench.accounts import list_coders

    found = list_coders(get_project(write=False))
    if as_json:
        print_json([a.to_json() for a in found])
        return
    if not found:
        console.print("No coders yet: `annotator coders add alice`")
        return
    rows = [[a.name, a.role, a.created_at, "revoked" if a.revoked else "open"] for a in found]
    console.print(table(None, ["coder", "role", "added", "account"], rows))


@coders_app.command("revoke")
def coders_revoke(name: str = typer.Argument(..., help="The coder.")) -> None:
    """Close a coder's account: its link stops working and its sessions end; its codes stay."""
    from annotator.services.workbench.accounts import revoke_coder

    done = revoke_coder(get_project(), name)
    console.print(f"Revoked {done.name}: the link no longer signs in. Its codes stay.")


def assign(
    coders: str = typer.Option(..., "--coders", help="Comma-separated coder names, e.g. alice,bob."),
    n: int = typer.Option(..., "--n", help="Documents added to each coder's queue."),
    overlap: int = typer.Option(0, "--overlap", help="Of which every coder gets the same (for reliability)."),
    split: str = typer.Option("dev", "--split", help="dev, test or all."),
    stratify_by: str | None = typer.Option(None, "--stratify-by", help="A metadata column to balance over."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw."),
    codebook: str | None = typer.Option(None, "--codebook", help="The codebook (default: the only one)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Queue documents for human coders, with an overlap every coder codes."""
    from annotator.services.workbench.assign import assign as assign_documents

    done = assign_documents(get_project(), coders, n, overlap, split, stratify_by, seed, codebook)
    if as_json:
        print_json(done.to_json())
        return
    console.print(
        f"Assignment {done.batch}: {done.per_coder} documents of the {done.split} split to each of "
        f"{', '.join(done.coders)} ({done.overlap} shared by all), {done.documents} documents in all, "
        f"codebook {done.codebook}, seed {done.seed}."
    )


def adjudicate(
    coders: str = typer.Option(..., "--coders", help="The human coders to adjudicate, e.g. alice,bob."),
    gold: str = typer.Option("adjudicated", "--gold", help="The gold coder it makes."),
    run_id: int | None = typer.Option(
        None, "--run", help="Also send a lead the documents this run labels differently."
    ),
    split: str | None = typer.Option(None, "--split", help="dev or test (default: every document)."),
    codebook: str | None = typer.Option(None, "--codebook", help="The codebook (default: the only one)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Open (or refresh) an adjudicated gold coder: unanimous documents pass through, the rest wait for a lead
    on the workbench's Adjudicate page."""
    from annotator.services.workbench.adjudicate import open_adjudication

    state = open_adjudication(get_project(), coders, gold, run_id, split, codebook)
    if as_json:
        print_json(state.to_json())
        return
    console.print(
        f"Gold coder {state.gold} from {', '.join(state.coders)} ({state.codebook}): {state.items} documents coded "
        f"by two or more; {state.unanimous} unanimous, {state.adjudicated} adjudicated, {len(state.pending)} "
        "waiting for a lead (`annotator serve`, Adjudicate)."
    )


@review_app.command("export")
def review_export(
    out: str = typer.Argument(..., help="The CSV file to write."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Write every review note (run, document, labels, tags, memo, author, codebook version) as CSV."""
    from annotator.services.workbench.review import export_notes

    n = export_notes(get_project(write=False), out, overwrite=force)
    console.print(f"{n} review notes written to {out}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (default: this machine only)."
    ),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port."),
) -> None:
    """The coding workbench in the browser: coders code their queues, leads watch the dashboard."""
    from annotator.errors import InputError
    from annotator.services.workbench.accounts import has_accounts, list_coders

    project = get_project()
    if not _loopback(host) and not has_accounts(project):
        raise InputError(
            f"--host {host}: refusing to listen beyond this machine with no coder accounts; add coders first "
            "(`annotator coders add NAME`)"
        )
    import uvicorn

    from annotator.web.app import create_app

    base = f"http://{host if ':' not in host else '[' + host + ']'}:{port}"
    console.print(f"annotator workbench on {base} (Ctrl-C stops it)")
    open_accounts = [a for a in list_coders(project) if not a.revoked]
    for a in open_accounts:
        console.print(
            f"  {a.name} ({a.role}): signs in with its link; `annotator coders link {a.name}` makes a new one"
        )
    if not open_accounts:
        console.print("  no coders yet: `annotator coders add alice --role lead` prints a sign-in link")
    if not _loopback(host):
        console.print("  plain HTTP: put it behind an HTTPS proxy before coders use it across a network")
    uvicorn.run(create_app(project), host=host, port=port, access_log=False, log_level="warning")
