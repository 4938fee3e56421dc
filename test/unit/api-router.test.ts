import test from 'ava'
import { Router } from '../../src/api/http.ts'

const h = (name: string) => async () => name

function router() {
  return new Router()
    .on('GET', '/v1/jobs', h('jobs'))
    .on('GET', '/v1/job/:id', h('job'))
    .on('POST', '/v1/job/:id/scale', h('scale'))
    .on('GET', '/v1/var/*path', h('var-get'))
    .on('PUT', '/v1/var/*path', h('var-put'))
    .on('GET', '/v1/:kind/special', h('any-kind'))
    .on('GET', '/v1', h('root'))
}

async function name(r: Router, method: string, path: string) {
  const m = r.match(method, path)
  if (m === null || m === 'method') return m
  return { name: await m.handler({} as never), params: m.params }
}

test('routes match by method and path, with params and a rest parameter, in registration order', async (t) => {
  const r = router()
  t.deepEqual(await name(r, 'GET', '/v1/jobs'), { name: 'jobs', params: {} })
  t.deepEqual(await name(r, 'GET', '/v1/job/web%20app'), { name: 'job', params: { id: 'web app' } })
  t.deepEqual(await name(r, 'POST', '/v1/job/web/scale'), { name: 'scale', params: { id: 'web' } })
  t.deepEqual(await name(r, 'PUT', '/v1/var/a/b//c'), { name: 'var-put', params: { path: 'a/b//c' } })
  t.deepEqual(await name(r, 'GET', '/v1/var/x'), { name: 'var-get', params: { path: 'x' } })
  t.deepEqual(await name(r, 'GET', '/v1/jobs/special'), { name: 'any-kind', params: { kind: 'jobs' } }, 'a param route matches under a literal segment of another')
  t.deepEqual(await name(r, 'GET', '/v1/whatever/special'), { name: 'any-kind', params: { kind: 'whatever' } })
  t.deepEqual(await name(r, 'GET', '/v1'), { name: 'root', params: {} })
})

test('a known path with another method is "method"; an unknown path is null, however many odd paths came before', async (t) => {
  const r = router()
  t.is(r.match('DELETE', '/v1/var/x'), 'method')
  t.is(r.match('PUT', '/v1/jobs'), 'method')
  t.is(r.match('GET', '/v1/nope'), null)
  t.is(r.match('GET', '/v2/jobs/x/y'), null)
  for (let i = 0; i < 1000; i++) t.is(r.match('GET', `/v1/random-${i}/x`), null)
  t.deepEqual(await name(r, 'GET', '/v1/random-1/special'), { name: 'any-kind', params: { kind: 'random-1' } })
})
