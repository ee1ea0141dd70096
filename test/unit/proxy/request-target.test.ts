import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  authorityHost,
  requestTarget,
  type RequestTarget,
  type TargetRequest,
} from '../../../src/proxy/request-target.js';

const req = (url: string, rawHeaders: string[], minor = 1): TargetRequest => ({
  url,
  rawHeaders,
  httpVersionMajor: 1,
  httpVersionMinor: minor,
});

describe('authorityHost', () => {
  it('drops the port and lower-cases, keeping IPv6 brackets', () => {
    assert.equal(authorityHost('Users.Mesh.Local:8080'), 'users.mesh.local');
    assert.equal(authorityHost('[::1]:80'), '[::1]');
    assert.equal(authorityHost('[v1.fe80::a+en1]'), '[v1.fe80::a+en1]');
    assert.equal(authorityHost('plain'), 'plain');
    assert.equal(authorityHost('a%2Db:'), 'a%2db');
    assert.equal(authorityHost(''), '');
    // Asked twice (the one-entry cache answers the second).
    assert.equal(authorityHost('Users.Mesh.Local:8080'), 'users.mesh.local');
  });

  it('refuses what is not uri-host [":" port] (RFC 9110 7.2)', () => {
    for (const bad of [
      'a b',
      'a\tb',
      'u@a',
      'a/b',
      'a?b',
      'a#b',
      'a:80x',
      'a:80:81',
      ':80',
      '[::1',
      '[]',
      '[::1]x',
      '[::1%25eth0]',
      'a%zz',
      'a%2',
      'caf\u00e9',
      'a\u0000b',
      'a\u007fb',
    ]) {
      assert.equal(authorityHost(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('requestTarget', () => {
  const target = (r: TargetRequest): RequestTarget => {
    const t = requestTarget(r, '10.0.0.1', 'http');
    assert.ok(typeof t !== 'string', String(t));
    return t;
  };

  it('takes the one Host of an origin-form request, and its line for the upstream head', () => {
    const t = target(req('/a?b', ['X-A', '1', 'HOST', 'Api.Example:81']));
    assert.equal(t.host, 'Api.Example:81');
    assert.equal(t.hostname, 'api.example');
    assert.equal(t.path, '/a?b');
    assert.equal(t.head.hostAt, 2);
    assert.equal(t.remoteAddress, '10.0.0.1');
  });

  it('refuses more than one Host, a missing one on HTTP/1.1 and an invalid one (RFC 9112 3.2)', () => {
    assert.equal(
      requestTarget(req('/', ['Host', 'a', 'host', 'a']), '', 'http'),
      'more than one Host header',
    );
    assert.equal(
      requestTarget(req('/', ['X-A', '1']), '', 'http'),
      'HTTP/1.1 request without a Host header',
    );
    assert.equal(requestTarget(req('/', ['Host', 'a b']), '', 'http'), 'invalid Host header');
    // HTTP/1.0 needs none.
    assert.equal(target(req('/', [], 0)).host, '');
  });

  it('routes an absolute-form target by its authority, sent on in origin-form (RFC 9112 3.2.2)', () => {
    const t = target(req('HTTP://A.Example:8080?q', ['Host', 'b.example']));
    assert.equal(t.host, 'A.Example:8080');
    assert.equal(t.hostname, 'a.example');
    assert.equal(t.path, '/?q');
    assert.equal(target(req('http://a.example/x/y?z', ['Host', 'b'])).path, '/x/y?z');
    assert.equal(target(req('http://a.example', [], 0)).host, 'a.example');
  });

  it('refuses an absolute-form target of another scheme, with userinfo or without a host', () => {
    const refused = (url: string): string => {
      const t = requestTarget(req(url, ['Host', 'a']), '', 'http');
      assert.equal(typeof t, 'string', url);
      return t as string;
    };
    assert.match(refused('https://a/'), /scheme "https"/);
    assert.match(refused('ftp://a/'), /scheme "ftp"/);
    assert.match(refused('http://u@a/'), /userinfo/);
    assert.match(refused('http:///x'), /authority/);
    assert.match(refused('http://:80/x'), /authority/);
    assert.match(refused('http://a b/x'), /authority/);
    assert.match(refused('a:b'), /target/);
    assert.equal(typeof requestTarget(req('https://a/', ['Host', 'a']), '', 'https'), 'object');
  });
});
