"""CLI sub-commands, one module per subsystem.

Each module listed in :data:`COMMAND_MODULES` defines ``register(subparsers)``, which adds its
sub-commands; handlers take ``(args, home)`` and return an exit code. Registration must stay cheap:
heavy imports (scikit-learn, dagster, the Label Studio SDK) happen inside the handlers.
"""

COMMAND_MODULES = (
    "data_engine.commands.core",
    "data_engine.commands.mining",
    "data_engine.commands.review",
    "data_engine.commands.bulk",
    "data_engine.commands.loop",
    "data_engine.commands.bench",
    "data_engine.commands.demo",
    "data_engine.commands.compute",
    "data_engine.commands.export",
    "data_engine.commands.classes",
)
