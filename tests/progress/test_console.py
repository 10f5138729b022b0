"""Live progress on a terminal; plain lines anywhere else."""

import io

from sweeper.report.progress import ConsoleProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_stream_gets_lines_only():
    out = io.StringIO()
    console = ConsoleProgress(out)
    console("[1/3] a loss=1.0")
    console.status("1/3 trials | alpha=0.3")
    console("[2/3] b loss=0.9")
    console.close()
    assert out.getvalue() == "[1/3] a loss=1.0\n[2/3] b loss=0.9\n"


def test_terminal_redraws_the_status_line_below_new_lines():
    out = Terminal()
    console = ConsoleProgress(out)
    console.status("1/3 trials | alpha=0.300 [0.2, 0.4]")
    console("[2/3] b loss=0.9")
    console.close()
    text = out.getvalue()
    # status drawn, cleared for the trial line, drawn again after it, then ended with a newline
    assert text == (
        "\r\033[K1/3 trials | alpha=0.300 [0.2, 0.4]"
        + "\r\033[K"
        + "[2/3] b loss=0.9\n"
        + "1/3 trials | alpha=0.300 [0.2, 0.4]"
        + "\n"
    )
