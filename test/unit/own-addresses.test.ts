import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { OWN_ADDRESSES_TTL_MS, OwnAddresses } from '../../src/net/own-addresses.ts'

describe('OwnAddresses', () => {
  it('lists loopback last and asks libp2p again only after the TTL', () => {
    let now = 1_000
    let calls = 0
    let addrs = ['/ip4/127.0.0.1/tcp/4001', '/ip4/192.168.1.5/tcp/4001']
    const own = new OwnAddresses({ getMultiaddrs: () => { calls++; return addrs.map(a => multiaddr(a)) } }, () => now)
    expect(own.list()).toEqual(['/ip4/192.168.1.5/tcp/4001', '/ip4/127.0.0.1/tcp/4001'])
    addrs = ['/ip4/10.0.0.7/tcp/4001']
    now += OWN_ADDRESSES_TTL_MS - 1
    expect(own.list()).toEqual(['/ip4/192.168.1.5/tcp/4001', '/ip4/127.0.0.1/tcp/4001'])
    expect(calls).toBe(1)
    now += 1
    expect(own.list()).toEqual(['/ip4/10.0.0.7/tcp/4001'])
    expect(calls).toBe(2)
  })

  it('keeps nothing while the node listens nowhere, and asks again when the clock goes back', () => {
    let now = 5_000
    let addrs: string[] = []
    let calls = 0
    const own = new OwnAddresses({ getMultiaddrs: () => { calls++; return addrs.map(a => multiaddr(a)) } }, () => now)
    expect(own.list()).toEqual([])
    addrs = ['/ip4/10.0.0.7/tcp/4001']
    expect(own.list()).toEqual(['/ip4/10.0.0.7/tcp/4001'])
    now -= 10
    addrs = ['/ip4/10.0.0.8/tcp/4001']
    expect(own.list()).toEqual(['/ip4/10.0.0.8/tcp/4001'])
    expect(calls).toBe(3)
  })
})
