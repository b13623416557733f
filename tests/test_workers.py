"""map_ordered: one-thread workers, results in order, the caller's thread state carried over."""

import threading

import pytest
import torch

from metastress.engine.workers import map_ordered

CPU = torch.device("cpu")


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def where_it_ran(item: int) -> tuple[int, int, int]:
    return item, torch.get_num_threads(), threading.get_ident()


def threads_of_a_new_thread() -> int:
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_items_run_in_order_on_one_thread_workers_and_the_callers_count_is_kept(two_threads):
    results = map_ordered(where_it_ran, range(7), CPU)
    assert [item for item, _, _ in results] == list(range(7))
    assert {threads for _, threads, _ in results} == {1}
    assert threading.get_ident() not in {ident for _, _, ident in results}
    assert torch.get_num_threads() == 2
    assert threads_of_a_new_thread() == 2  # the workers' set_num_threads(1) did not leak


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_one_thread_or_another_device_runs_in_the_callers_thread(two_threads, device):
    if device == "cpu":
        torch.set_num_threads(1)
    results = map_ordered(where_it_ran, range(3), torch.device(device))
    assert [item for item, _, _ in results] == [0, 1, 2]
    assert {ident for _, _, ident in results} == {threading.get_ident()}


def test_workers_inherit_grad_mode_and_cpu_autocast(two_threads):
    a = torch.ones(4, 4)

    def state(_: int) -> tuple[bool, torch.dtype]:
        return torch.is_grad_enabled(), torch.mm(a, a).dtype

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        inside = map_ordered(state, range(4), CPU)
    outside = map_ordered(state, range(4), CPU)
    assert inside == [(False, torch.bfloat16)] * 4
    assert outside == [(True, torch.float32)] * 4


def test_an_error_in_a_worker_reaches_the_caller(two_threads):
    def fail_on_two(item: int) -> int:
        if item == 2:
            raise ValueError("item 2 is bad")
        return item

    with pytest.raises(ValueError, match="item 2 is bad"):
        map_ordered(fail_on_two, range(4), CPU)
