#!/usr/bin/python3
"""The web console of `keel serve`, driven in headless Chromium (issue 20).

Starts the real binary on a temp data dir with a token, runs workflows through
the HTTP API (one waiting for approval, a fan-out whose attempts fail once and
are retried, one that fails, approvals inside branches) and checks in the
browser: the list, its counts and filters and its live updates; a run's
timeline (one bar per attempt, waiting apart from running); the event log
against `keel events --json`; approving through the page (refused with a wrong
token, the reason shown; accepted with the right one, the page updating
without a reload, the new state checked through the API and the CLI); a 409
refusal shown in place; the node page. It saves screenshots, and prints how
long a page of 1,000 processes and a run of 1,000 tasks take to render.

Usage: console_test.py --keel build/bin/keel [--screenshots DIR]
Needs Debian's chromium, chromium-driver and python3-selenium: without them
it fails (it does not skip).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
WORKFLOWS = os.path.join(HERE, 'workflows')
TOKEN = 'console-test-token'
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:  # a missing tool fails the test, never skips it
    print(f'FAIL: python3-selenium is missing ({e}); apt-get install python3-selenium '
          '(make test installs it)', file=sys.stderr)
    sys.exit(1)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)
    print(f'  ok: {message}')


class Keel:
    """`keel serve` on a temp data dir, and a small client of its HTTP API."""

    def __init__(self, binary, data):
        self.binary, self.data = binary, data
        self.log = open(os.path.join(os.path.dirname(data), 'serve.log'), 'w')
        self.proc = subprocess.Popen(
            [binary, 'serve', '--data', data, '--listen', '127.0.0.1:0', '--token', TOKEN,
             '--exec-policy', 'full'], stdout=self.log, stderr=subprocess.STDOUT)
        node_json = os.path.join(data, 'node.json')
        deadline = time.time() + 60
        self.address = None
        while time.time() < deadline and self.proc.poll() is None:
            try:
                with open(node_json) as f:
                    self.address = json.load(f)['address']
                break
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        if not self.address:
            raise Failure('keel serve did not write node.json with its address')
        self.base = f'http://{self.address}'

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def request(self, method, path, body=None, token=TOKEN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header('Content-Type', 'application/json')
        if token:
            req.add_header('Authorization', f'Bearer {token}')
        try:
            with urllib.request.urlopen(req, timeout=120) as res:
                return res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get(self, path):
        status, text = self.request('GET', path, token=None)
        if status != 200:
            raise Failure(f'GET {path}: {status} {text}')
        return json.loads(text)

    def start(self, workflow_file, inputs=None, pid=None, wait=None, key=None):
        with open(os.path.join(WORKFLOWS, workflow_file)) as f:
            body = {'workflow': f.read(), 'inputs': inputs or {}}
        if pid:
            body['id'] = pid
        if key:
            body['idempotency_key'] = key
        path = '/v1/processes' + (f'?wait={wait}' if wait else '')
        status, text = self.request('POST', path, body)
        if status not in (200, 201):
            raise Failure(f'starting {workflow_file}: {status} {text}')
        return json.loads(text)

    def wait_for(self, pid, predicate, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            snapshot = self.get(f'/v1/processes/{pid}')
            if predicate(snapshot):
                return snapshot
            time.sleep(0.1)
        raise Failure(f'{pid} never became {what}: {snapshot["status"]}')

    def cli(self, *args):
        out = subprocess.run([self.binary, *args, '--data', self.data], capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise Failure(f'keel {" ".join(args)} exited {out.returncode}: {out.stderr}')
        return out.stdout


def browser():
    for path, package in ((CHROMIUM, 'chromium'), (CHROMEDRIVER, 'chromium-driver')):
        if not os.access(path, os.X_OK):
            raise Failure(f'{path} is missing: apt-get install {package} (make test installs it)')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                '--window-size=1400,1000', '--disable-extensions', '--no-first-run'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Console:
    """The browser on the console, with waits that say what they waited for."""

    def __init__(self, driver, base, shots):
        self.d, self.base, self.shots = driver, base, shots

    def open(self, hash_path=''):
        self.d.get(f'{self.base}/#{hash_path}')

    def wait(self, predicate, what, timeout=30):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda d: predicate())
        except TimeoutException:
            raise Failure(f'timed out waiting for {what}')

    def click(self, css):
        element = self.one(css)
        self.js('arguments[0].scrollIntoView({block: "center"});', element)
        element.click()

    def all(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def one(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def shot(self, name, css=None):
        path = os.path.join(self.shots, name)
        if css:
            element = self.one(css)
            self.js('arguments[0].scrollIntoView({block: "start"}); window.scrollBy(0, -48);', element)
            time.sleep(0.2)
        self.d.save_screenshot(path)
        print(f'  screenshot {path}')

    def severe_logs(self):
        # The refusals the test provokes (401, 409) are logged by Chromium too.
        return [e for e in self.d.get_log('browser')
                if e['level'] == 'SEVERE' and 'status of 401' not in e['message'] and
                'status of 409' not in e['message']]

    # Read in one script: the page redraws live, so that elements found in
    # one call may be gone in the next.
    def attrs(self, css, *names):
        return self.js('return [...document.querySelectorAll(arguments[0])].map('
                       '(e) => arguments[1].map((n) => e.getAttribute(n)));', css, list(names))

    def text(self, css):
        return self.js('const e = document.querySelector(arguments[0]);'
                       'return e ? e.textContent : "";', css)

    def list_rows(self):
        return dict(self.attrs('#process-rows tr[data-id]', 'data-id', 'data-status'))


def test_list(keel, ui, ids):
    print('the process list')
    ui.open('/')
    ui.wait(lambda: set(ids.values()) <= set(ui.list_rows()), 'every process in the list')
    rows = ui.list_rows()
    for pid in ids.values():
        check(rows[pid] == keel.get(f'/v1/processes/{pid}')['status'],
              f'{pid} is listed as {rows[pid]}, as the API says')
    counts = {c.get_attribute('data-status'): int(c.get_attribute('data-count'))
              for c in ui.all('#counts a.count[data-count]')}
    listed = keel.get('/v1/processes?limit=1000')['processes']
    for status in ('waiting', 'completed', 'failed'):  # counted by the node's gauges
        expected = sum(1 for p in listed if p['status'] == status)
        check(counts.get(status) == expected, f'the {status} count is {expected}')
    ui.shot('processes.png')

    Select(ui.one('#filter-status')).select_by_value('failed')
    ui.wait(lambda: set(ui.list_rows().values()) == {'failed'}, 'only failed processes')
    check(ids['failed'] in ui.list_rows(), 'the status filter keeps the failed process only')

    ui.open('/?workflow=fanout')
    ui.wait(lambda: list(ui.list_rows()) == [ids['fanout']], 'only the fanout process')
    check(True, 'the workflow filter keeps the fan-out process only')

    ui.open('/?search=' + ids['approve'][:9])
    ui.wait(lambda: list(ui.list_rows()) == [ids['approve']], 'the id prefix match')
    check(True, 'an id prefix finds its process')
    ui.open('/?search=order-')
    ui.wait(lambda: list(ui.list_rows()) == [ids['approve']], 'the idempotency key prefix match')
    check(True, 'an idempotency key prefix finds its process')
    ui.open('/?since=1h')
    ui.wait(lambda: set(ids.values()) <= set(ui.list_rows()), 'processes created in the last hour')
    ui.open('/?until=2000-01-01T00:00:00Z')
    ui.wait(lambda: ui.all('#process-rows td.muted'), 'no process before 2000')
    check(not ui.list_rows(), 'a time range before any process lists none')

    # Pagination: two a page, newest first, as the API pages.
    first = keel.get('/v1/processes?limit=2&offset=2')['processes']
    ui.open('/?limit=2&offset=2')
    ui.wait(lambda: list(ui.list_rows()) == [p['id'] for p in first], 'the second page of two')
    check(True, 'offset and limit page the list as the API does')
    ui.click('#next')
    third = [p['id'] for p in keel.get('/v1/processes?limit=2&offset=4')['processes']]
    ui.wait(lambda: list(ui.list_rows()) == third, 'the third page after "older"')
    check(True, 'the pager moves to the next page')

    # Live: a process started elsewhere appears without a reload.
    ui.open('/')
    ui.wait(lambda: ids['approve'] in ui.list_rows(), 'the list')
    ui.js('window.keelNoReload = 1;')
    live = keel.start('approval.yaml', {'order_id': 'L-1'}, pid='p_live_list')['id']
    ui.wait(lambda: ui.list_rows().get(live) == 'waiting', 'the new process in the open list')
    check(ui.js('return window.keelNoReload') == 1, 'the list showed a new process without reload')
    keel.request('POST', f'/v1/processes/{live}/cancel', {'reason': 'done with it'})
    ui.wait(lambda: ui.list_rows().get(live) == 'cancelled', 'the cancelled status in the list')
    check(ui.js('return window.keelNoReload') == 1, 'the list followed a status change live')


def test_timeline(keel, ui, ids):
    print('a run: timeline, tasks, branches, event log')
    pid = ids['fanout']
    snapshot = keel.get(f'/v1/processes/{pid}')
    ui.open(f'/p/{pid}')
    ui.wait(lambda: ui.all('#timeline-svg rect.seg'), 'the timeline')
    ui.wait(lambda: len(ui.all('#event-rows tr')) == snapshot['last_seq'], 'every event row')
    check(ui.text('#hdr-status .badge') == 'completed',
          'the header shows completed')
    for task in snapshot['tasks']:
        if task['branch'] == 'main':
            continue
        runs = ui.all(f'#timeline-svg rect.seg.running[data-task="{task["id"]}"]')
        check(len(runs) == task['attempts'] == 2,
              f'{task["id"]}: one bar per attempt ({len(runs)} bars, {task["attempts"]} attempts)')
        check([r.get_attribute('data-attempt') for r in runs] == ['1', '2'],
              f'{task["id"]}: the bars are attempts 1 and 2')
        check([r.get_attribute('data-outcome') for r in runs] == ['failed', 'completed'],
              f'{task["id"]}: attempt 1 failed, attempt 2 completed')
        backoff = ui.all(f'#timeline-svg rect.seg.waiting.k-backoff[data-task="{task["id"]}"]')
        check(len(backoff) == 1, f'{task["id"]}: the retry backoff is drawn apart, as waiting')
        b1, r2 = float(backoff[0].get_attribute('x')), float(runs[1].get_attribute('x'))
        check(b1 <= r2, f'{task["id"]}: the backoff comes before the second attempt')
    labels = [t for (t,) in ui.attrs('#timeline-svg g.task-row', 'data-task')]
    check(labels == ['fan', 'fan/0/work', 'fan/1/work', 'fan/2/work', 'done'],
          'a row per task, each branch\'s under the task that forked it')
    check(not ui.all('#now-line'), 'no "now" line on an ended run')
    branches = [li.get_attribute('data-branch') for li in ui.all('#branches li[data-branch]')]
    check(sorted(branches) == sorted(b['id'] for b in snapshot['branches']),
          'the branch tree has every branch')
    ui.shot('run-timeline.png', '#timeline-section')
    check(ui.attrs('li.fork[data-fork="fan"]', 'data-join') == [['all']],
          'the branch tree shows the fork with its join kind')
    ui.wait(lambda: ui.attrs('#verify', 'data-ok') == [['true']], 'the verify verdict')
    check('verified' in ui.text('#verify'), 'the chain\'s verify verdict is shown')
    definition = keel.get(f'/v1/processes/{pid}/definition')['definition']
    check(json.loads(ui.text('#definition-json')) == definition,
          'the workflow definition is shown as stored')

    # The event log's hashes are the log's, as `keel events --json` prints it.
    cli = [json.loads(line) for line in keel.cli('events', pid, '--json').splitlines() if line]
    rows = ui.all('#event-rows tr')
    page = [(int(r.get_attribute('data-seq')), r.get_attribute('data-type'),
             r.find_element(By.CSS_SELECTOR, 'code.hash').get_attribute('data-hash')) for r in rows]
    check(page == [(e['seq'], e['type'], e['hash']) for e in cli],
          f'the {len(page)} event rows (seq, type, hash) match keel events --json')

    # As of a seq: the timeline rebuilt from the log up to it.
    retry_seq = next(e['seq'] for e in cli if e['type'] == 'TaskRetryScheduled')
    ui.click(f'#event-rows tr[data-seq="{retry_seq}"] a.seq')
    ui.wait(lambda: ui.one('#as-of').is_displayed(), 'the as-of banner')
    first = cli[retry_seq - 1]['entity']
    runs = ui.all(f'#timeline-svg rect.seg.running[data-task="{first}"]')
    check(len(runs) == 1, f'as of seq {retry_seq}, {first} has had one attempt')
    replayed = keel.get(f'/v1/processes/{pid}/replay?to={retry_seq}')
    shown = dict(ui.attrs('#tasks tr[data-task]', 'data-task', 'data-status'))
    check(shown == {t['id']: t['status'] for t in replayed['tasks']},
          f'as of seq {retry_seq}, the tasks are the replay\'s: {shown}')
    ui.click('#back-to-now')
    ui.wait(lambda: len(ui.all(f'#timeline-svg rect.seg.running[data-task="{first}"]')) == 2,
            'the whole timeline again')

    print('a failed run')
    failed = keel.get(f'/v1/processes/{ids["failed"]}')
    ui.open(f'/p/{ids["failed"]}')
    ui.wait(lambda: ui.all('#timeline-svg rect.seg.running'), 'the failed run\'s timeline')
    check('card declined' in ui.text('#hdr-error'), 'the header shows the error')
    runs = ui.all('#timeline-svg rect.seg.running[data-task="charge"]')
    check(len(runs) == failed['tasks'][0]['attempts'] == 2 and
          all(r.get_attribute('data-outcome') == 'failed' for r in runs),
          'both failed attempts are drawn, each failed')


def test_actions(keel, ui, ids):
    print('acting: approve, a wrong token, a 409 refusal')
    pid = ids['approve']
    ui.open(f'/p/{pid}')
    ui.wait(lambda: ui.all('.card.approval[data-task="ship"] button.approve'), 'the approval card')
    ui.wait(lambda: ui.all('#now-line'), 'the "now" line of a waiting run')
    check(ui.all('#timeline-svg rect.seg.waiting.k-approval.live[data-task="ship"]'),
          'the approval wait is drawn as waiting, up to now')
    check('ship order A-1?' in ui.one('.card.approval .prompt').text, 'the approval prompt')
    ui.shot('run-waiting.png')
    ui.js('window.keelNoReload = 1;')

    token = ui.one('#token')
    token.clear()
    token.send_keys('not-the-token')
    card = ui.one('.card.approval[data-task="ship"]')
    card.find_element(By.CSS_SELECTOR, 'input.by').send_keys('mallory')
    ui.click('.card.approval[data-task="ship"] button.approve')
    result = card.find_element(By.CSS_SELECTOR, '.result')
    ui.wait(lambda: '401' in result.text, 'the refusal of a wrong token')
    check('unauthorized' in result.text and 'Bearer' in result.text,
          f'a wrong token is refused with the reason shown: "{result.text}"')
    check(keel.get(f'/v1/processes/{pid}')['status'] == 'waiting', 'the process still waits')

    token.clear()
    token.send_keys(TOKEN)
    by = card.find_element(By.CSS_SELECTOR, 'input.by')
    by.clear()
    by.send_keys('alice')
    card.find_element(By.CSS_SELECTOR, 'input.reason').send_keys('stock checked')
    ui.click('.card.approval[data-task="ship"] button.approve')
    ui.wait(lambda: ui.text('#hdr-status .badge') == 'completed',
            'the page to show the process completed')
    check(ui.js('return window.keelNoReload') == 1, 'the page updated without a reload')
    snapshot = keel.get(f'/v1/processes/{pid}')
    ship = next(t for t in snapshot['tasks'] if t['id'] == 'ship')
    check(snapshot['status'] == 'completed', 'the API says completed')
    check(ship['approval']['by'] == 'alice' and ship['approval']['reason'] == 'stock checked',
          'the approval is recorded with by and reason')
    shown = json.loads(keel.cli('show', pid, '--json'))
    check(shown['status'] == 'completed', 'keel show --json says completed')
    ui.wait(lambda: ui.all('#event-rows tr[data-type="TaskApproved"]'), 'TaskApproved in the log')
    check(len(ui.all('#event-rows tr')) == snapshot['last_seq'],
          'the event log grew to the last seq live')

    ui.click('button.control[data-action="pause"]')
    ui.wait(lambda: '409' in ui.text('#control-result'), 'the 409 refusal')
    result = ui.text('#control-result')
    check('conflict' in result, f'pausing a completed process: "{result}" in place')
    ui.shot('run-refused.png', '#actions')

    print('approvals inside branches (task ids with "/")')
    pid = ids['branches']
    ui.open(f'/p/{pid}')
    ui.wait(lambda: len(ui.all('.card.approval')) == 2, 'two approval cards')
    for task in ('fan/0/ok', 'fan/1/ok'):
        ui.click(f'.card.approval[data-task="{task}"] button.approve')
        ui.wait(lambda: not ui.all(f'.card.approval[data-task="{task}"]'), f'{task} approved')
        check(True, f'{task} approved through the page')
    ui.wait(lambda: ui.text('#hdr-status .badge') == 'completed',
            'the branch approvals to complete the process')
    check(keel.get(f'/v1/processes/{pid}')['status'] == 'completed',
          'both branch approvals completed the process (API)')


def test_signal_and_controls(keel, ui, ids):
    print('pause, resume and a signal with a payload, through the page')
    pid = ids['signal']
    ui.open(f'/p/{pid}')
    ui.wait(lambda: ui.all('.card.signal[data-topic="payment"]'), 'the awaited signal card')
    ui.click('button.control[data-action="pause"]')
    ui.wait(lambda: ui.text('#hdr-status .badge') == 'paused', 'the page to show paused')
    check(keel.get(f'/v1/processes/{pid}')['status'] == 'paused', 'paused through the page (API)')
    ui.click('button.control[data-action="resume"]')
    ui.wait(lambda: ui.text('#hdr-status .badge') == 'waiting', 'the page to show waiting again')
    check(keel.get(f'/v1/processes/{pid}')['status'] == 'waiting', 'resumed through the page (API)')
    ui.wait(lambda: ui.all('.card.signal[data-topic="payment"] textarea'), 'the payload editor')
    payload = ui.one('.card.signal[data-topic="payment"] textarea')
    payload.clear()
    payload.send_keys('{"amount": 250, "currency": "EUR"')  # not JSON yet
    ui.click('.card.signal[data-topic="payment"] button.send')
    ui.wait(lambda: 'not JSON' in ui.text('.card.signal .result'), 'the payload refused')
    check(keel.get(f'/v1/processes/{pid}')['status'] == 'waiting', 'a payload that is not JSON is not sent')
    payload.send_keys('}')
    ui.click('.card.signal[data-topic="payment"] button.send')
    ui.wait(lambda: ui.text('#hdr-status .badge') == 'completed', 'the signal to complete the process')
    outputs = keel.get(f'/v1/processes/{pid}')['outputs']
    check(outputs == {'paid': {'amount': 250, 'currency': 'EUR'}},
          f'the signal\'s payload reached the process: {outputs}')


def test_cancel_attempt(keel, ui):
    print('a running attempt cancelled through the page')
    pid = keel.start('slow.yaml', pid='p_slow')['id']
    keel.wait_for(pid, lambda s: s['tasks'] and s['tasks'][0]['status'] == 'running', 'running')
    ui.open(f'/p/{pid}')
    ui.wait(lambda: ui.all('.card.running [data-task="nap"] button.cancel-task'), 'the running card')
    ui.click('.card.running [data-task="nap"] button.cancel-task')
    ui.wait(lambda: ui.text('#hdr-status .badge') == 'failed', 'the page to show the attempt cancelled')
    task = keel.get(f'/v1/processes/{pid}')['tasks'][0]
    check('cancelled by' in (task.get('error') or ''), f'the attempt was cancelled (API): {task}')


def test_node(ui):
    print('the node page')
    ui.open('/node')
    ui.wait(lambda: ui.all('#health dd[data-field="version"]'), 'the health fields')
    ui.wait(lambda: len(ui.all('svg.chart polyline')) >= 3, 'charts with two samples', timeout=20)
    check(len(ui.all('figure.chart-box')) == 6, 'six charts of /v1/metrics')
    check(ui.one('#health dd[data-field="status"]').text == 'ok', 'health says ok')
    ui.shot('node.png')


def test_scale(keel, ui, data):
    print('1,000 processes, and a run of 1,000 tasks (render times printed, not asserted)')
    with open(os.path.join(WORKFLOWS, 'failing.yaml')) as f:
        text = f.read()
    cheap = {'workflow': {'name': 'bulk', 'steps': [{'id': 'hello', 'activity': 'echo',
                                                     'with': {'text': 'hi'}}]}}
    for i in range(1000):
        status, body = keel.request('POST', '/v1/processes', cheap)
        if status != 201:
            raise Failure(f'bulk start {i}: {status} {body}')
    wide = keel.start('wide.yaml', wait=600)
    check(wide['status'] == 'completed' and len(wide['tasks']) == 1000,
          f'the wide run completed with {len(wide["tasks"])} tasks')
    ui.open('/?limit=1000')
    ui.wait(lambda: len(ui.all('#process-rows tr[data-id]')) == 1000, 'a page of 1000', 120)
    list_ms = ui.js('return window.keelRender.list')
    ui.open(f'/p/{wide["id"]}')
    ui.wait(lambda: len(ui.all('#timeline-svg g.task-row')) == 1000, 'a timeline of 1000', 120)
    run_ms = ui.js('return window.keelRender.run')
    print(f'  render: a page of 1000 processes in {list_ms:.0f} ms, '
          f'a run of 1000 tasks in {run_ms:.0f} ms (Chromium, headless)')
    check(True, 'both pages rendered')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--keel', default=os.environ.get('KEEL_BIN', 'build/bin/keel'))
    parser.add_argument('--screenshots', default=None)
    parser.add_argument('--skip-scale', action='store_true')
    args = parser.parse_args()
    top = tempfile.mkdtemp(prefix='keel-console-')
    data = os.path.join(top, 'data')
    shots = args.screenshots or os.path.join(top, 'screenshots')
    os.makedirs(shots, exist_ok=True)
    markers = os.path.join(top, 'markers')
    os.makedirs(markers)
    keel = driver = None
    ok = False
    try:
        keel = Keel(os.path.abspath(args.keel), data)
        # A node that serves the console serves its page at / .
        req = urllib.request.Request(keel.base + '/', headers={'Accept-Encoding': 'gzip, deflate, br'})
        with urllib.request.urlopen(req, timeout=30) as res:
            check(res.headers.get('Content-Encoding') in (None, 'gzip', 'deflate'),
                  'the console is not sent Brotli-encoded')
            check(res.headers.get('Content-Type').startswith('text/html'), '/ is the page')
            etag = res.headers.get('ETag')
        req = urllib.request.Request(keel.base + '/', headers={'If-None-Match': etag})
        try:
            urllib.request.urlopen(req, timeout=30)
            raise Failure('a page the browser holds is sent again')
        except urllib.error.HTTPError as e:
            check(e.code == 304, 'a page the browser holds is answered 304 by its ETag')
        ids = {
            'failed': keel.start('failing.yaml', wait=60)['id'],
            'fanout': keel.start('fanout.yaml', {'dir': markers}, wait=60)['id'],
            'branches': keel.start('approvals_fanout.yaml', wait=60)['id'],
            'signal': keel.start('signal.yaml', pid='p_signal', wait=60)['id'],
            'approve': keel.start('approval.yaml', {'order_id': 'A-1'}, pid='p_approve_A1',
                                  key='order-A-1', wait=60)['id'],
        }
        keel.wait_for(ids['failed'], lambda s: s['status'] == 'failed', 'failed')
        keel.wait_for(ids['fanout'], lambda s: s['status'] == 'completed', 'completed')
        keel.wait_for(ids['approve'], lambda s: s['status'] == 'waiting', 'waiting')
        keel.wait_for(ids['branches'], lambda s: s['status'] == 'waiting', 'waiting')
        keel.wait_for(ids['signal'], lambda s: s['status'] == 'waiting', 'waiting')
        for i in range(3):  # more rows, for the pager
            keel.start('failing.yaml', wait=60)
        driver = browser()
        ui = Console(driver, keel.base, shots)
        test_list(keel, ui, ids)
        test_timeline(keel, ui, ids)
        test_actions(keel, ui, ids)
        test_signal_and_controls(keel, ui, ids)
        test_cancel_attempt(keel, ui)
        test_node(ui)
        if not args.skip_scale:
            test_scale(keel, ui, data)
        logs = ui.severe_logs()
        check(not logs, f'no errors in the browser console {logs}')
        ok = True
    except Failure as e:
        print(f'FAIL: {e}', file=sys.stderr)
    except Exception:  # a crash of the test fails it, with its trace
        traceback.print_exc()
    finally:
        if driver and not ok:
            try:
                driver.save_screenshot(os.path.join(shots, 'failure.png'))
                print(f'  failure screenshot in {shots}/failure.png', file=sys.stderr)
            except Exception:
                pass
        if driver:
            driver.quit()
        if keel:
            keel.stop()
        if not ok and os.path.exists(os.path.join(top, 'serve.log')):
            with open(os.path.join(top, 'serve.log')) as f:
                sys.stderr.write('--- keel serve log (tail)\n' + ''.join(f.readlines()[-30:]))
    if ok:
        shutil.rmtree(top, ignore_errors=True)
        print('PASS')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
