// Type definitions for netcore-net: Node's `net` API with the sockets owned by
// the netcore daemon. They follow @types/node's declarations of `net` for what
// this library supports (same names, overloads and event signatures), so code
// typed against `net` type-checks against this module; the additions are the
// `endpoint` option (which netcore to use), `listen({ fd })` / `listenFD()`,
// `listen({ group })`, `server.pause(msecs)` and the `'fd'` event.

/// <reference types="node" />

import * as stream from 'stream';
import { EventEmitter } from 'events';

export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

export type SocketReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

/** Where netcore is: an endpoint option, else NETCORE_ENDPOINT, else ipc:///tmp/netcore.sock. */
export interface NetcoreOpts {
  endpoint?: string | undefined;
}

export interface SocketConstructorOpts extends NetcoreOpts {
  allowHalfOpen?: boolean | undefined;
  /** Readable and write high-water mark in bytes (16 KiB). */
  highWaterMark?: number | undefined;
}

export interface TcpSocketConnectOpts {
  port: number;
  host?: string | undefined;
}

export interface IpcSocketConnectOpts {
  path: string;
}

export type SocketConnectOpts = TcpSocketConnectOpts | IpcSocketConnectOpts;

/** An error as Node reports it: `code` is the Node name (`ECONNREFUSED`, `ERR_NETCORE_GONE`, ...). */
export interface NetcoreError extends Error {
  code: string;
  errno?: number | undefined;
  syscall?: string | undefined;
  address?: string | undefined;
  port?: number | undefined;
  hostname?: string | undefined;
}

export class Socket extends stream.Duplex {
  constructor(options?: SocketConstructorOpts);

  write(buffer: Uint8Array | string, cb?: (err?: Error | null) => void): boolean;
  write(str: Uint8Array | string, encoding?: BufferEncoding, cb?: (err?: Error | null) => void): boolean;
  /** The seed's fd passing: sends fdSocket's descriptor with the data (UNIX sockets). */
  write(data: Uint8Array | string, encoding: BufferEncoding | undefined, fdSocket: Socket,
        cb?: (err?: Error | null) => void): boolean;

  connect(options: SocketConnectOpts, connectionListener?: () => void): this;
  connect(port: number, host: string, connectionListener?: () => void): this;
  connect(port: number, connectionListener?: () => void): this;
  connect(path: string, connectionListener?: () => void): this;

  setEncoding(encoding?: BufferEncoding): this;
  pause(): this;
  resume(): this;
  setTimeout(timeout: number, callback?: () => void): this;
  setNoDelay(noDelay?: boolean): this;
  setKeepAlive(enable?: boolean, initialDelay?: number): this;
  ref(): this;
  unref(): this;
  address(): AddressInfo | {};

  readonly bufferSize: number;
  readonly bytesRead: number;
  /** Counts the old owner's writes too on an adopted socket (Adopted.bytes_written + queued_bytes). */
  readonly bytesWritten: number;
  /** true on a 'connection' adopted from a handler that died or left (PROTOCOL.md 13). */
  readonly adopted: boolean;
  readonly connecting: boolean;
  readonly pending: boolean;
  readonly destroyed: boolean;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly localFamily?: string;
  readonly readyState: SocketReadyState;
  readonly remoteAddress?: string | undefined;
  readonly remoteFamily?: string | undefined;
  readonly remotePort?: number | undefined;
  timeout?: number | undefined;

  end(callback?: () => void): this;
  end(buffer: Uint8Array | string, callback?: () => void): this;
  end(str: Uint8Array | string, encoding?: BufferEncoding, callback?: () => void): this;

  /**
   * events.EventEmitter
   *   1. close
   *   2. connect
   *   3. data
   *   4. drain
   *   5. end
   *   6. error
   *   7. fd (netcore: a socket received by fd passing)
   *   8. ready
   *   9. timeout
   */
  addListener(event: string, listener: (...args: any[]) => void): this;
  addListener(event: 'close', listener: (hadError: boolean) => void): this;
  addListener(event: 'connect', listener: () => void): this;
  addListener(event: 'data', listener: (data: Buffer) => void): this;
  addListener(event: 'drain', listener: () => void): this;
  addListener(event: 'end', listener: () => void): this;
  addListener(event: 'error', listener: (err: Error) => void): this;
  addListener(event: 'fd', listener: (socket: Socket) => void): this;
  addListener(event: 'ready', listener: () => void): this;
  addListener(event: 'timeout', listener: () => void): this;

  emit(event: string | symbol, ...args: any[]): boolean;
  emit(event: 'close', hadError: boolean): boolean;
  emit(event: 'connect'): boolean;
  emit(event: 'data', data: Buffer): boolean;
  emit(event: 'drain'): boolean;
  emit(event: 'end'): boolean;
  emit(event: 'error', err: Error): boolean;
  emit(event: 'fd', socket: Socket): boolean;
  emit(event: 'ready'): boolean;
  emit(event: 'timeout'): boolean;

  on(event: string, listener: (...args: any[]) => void): this;
  on(event: 'close', listener: (hadError: boolean) => void): this;
  on(event: 'connect', listener: () => void): this;
  on(event: 'data', listener: (data: Buffer) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: 'end', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'fd', listener: (socket: Socket) => void): this;
  on(event: 'ready', listener: () => void): this;
  on(event: 'timeout', listener: () => void): this;

  once(event: string, listener: (...args: any[]) => void): this;
  once(event: 'close', listener: (hadError: boolean) => void): this;
  once(event: 'connect', listener: () => void): this;
  once(event: 'data', listener: (data: Buffer) => void): this;
  once(event: 'drain', listener: () => void): this;
  once(event: 'end', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'fd', listener: (socket: Socket) => void): this;
  once(event: 'ready', listener: () => void): this;
  once(event: 'timeout', listener: () => void): this;

  prependListener(event: string, listener: (...args: any[]) => void): this;
  prependListener(event: 'close', listener: (hadError: boolean) => void): this;
  prependListener(event: 'connect', listener: () => void): this;
  prependListener(event: 'data', listener: (data: Buffer) => void): this;
  prependListener(event: 'drain', listener: () => void): this;
  prependListener(event: 'end', listener: () => void): this;
  prependListener(event: 'error', listener: (err: Error) => void): this;
  prependListener(event: 'fd', listener: (socket: Socket) => void): this;
  prependListener(event: 'ready', listener: () => void): this;
  prependListener(event: 'timeout', listener: () => void): this;

  prependOnceListener(event: string, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'close', listener: (hadError: boolean) => void): this;
  prependOnceListener(event: 'connect', listener: () => void): this;
  prependOnceListener(event: 'data', listener: (data: Buffer) => void): this;
  prependOnceListener(event: 'drain', listener: () => void): this;
  prependOnceListener(event: 'end', listener: () => void): this;
  prependOnceListener(event: 'error', listener: (err: Error) => void): this;
  prependOnceListener(event: 'fd', listener: (socket: Socket) => void): this;
  prependOnceListener(event: 'ready', listener: () => void): this;
  prependOnceListener(event: 'timeout', listener: () => void): this;
}

export interface ListenOptions {
  port?: number | undefined;
  host?: string | undefined;
  backlog?: number | undefined;
  path?: string | undefined;
  /** A listening descriptor netcore inherited (Node's listenFD). */
  fd?: number | undefined;
  /** Share the listener with the other handlers of this group (PROTOCOL.md). */
  group?: string | undefined;
}

export interface ServerOpts extends NetcoreOpts {
  allowHalfOpen?: boolean | undefined;
  pauseOnConnect?: boolean | undefined;
}

export class Server extends EventEmitter {
  constructor(connectionListener?: (socket: Socket) => void);
  constructor(options?: ServerOpts, connectionListener?: (socket: Socket) => void);

  listen(port?: number, hostname?: string, backlog?: number, listeningListener?: () => void): this;
  listen(port?: number, hostname?: string, listeningListener?: () => void): this;
  listen(port?: number, backlog?: number, listeningListener?: () => void): this;
  listen(port?: number, listeningListener?: () => void): this;
  listen(path: string, backlog?: number, listeningListener?: () => void): this;
  listen(path: string, listeningListener?: () => void): this;
  listen(options: ListenOptions, listeningListener?: () => void): this;
  /** Node v0.4's listenFD(fd): adopt a listening fd netcore inherited. */
  listenFD(fd: number, listeningListener?: () => void): this;
  close(callback?: (err?: Error) => void): this;
  address(): AddressInfo | string | null;
  getConnections(cb: (error: Error | null, count: number) => void): void;
  /** The seed's server.pause(msecs): accept nothing for msecs (default 1000). */
  pause(msecs?: number): this;
  ref(): this;
  unref(): this;
  maxConnections: number;
  readonly connections: number;
  readonly listening: boolean;

  /**
   * events.EventEmitter
   *   1. close
   *   2. connection
   *   3. error
   *   4. listening
   */
  addListener(event: string, listener: (...args: any[]) => void): this;
  addListener(event: 'close', listener: () => void): this;
  addListener(event: 'connection', listener: (socket: Socket) => void): this;
  addListener(event: 'error', listener: (err: Error) => void): this;
  addListener(event: 'listening', listener: () => void): this;

  emit(event: string | symbol, ...args: any[]): boolean;
  emit(event: 'close'): boolean;
  emit(event: 'connection', socket: Socket): boolean;
  emit(event: 'error', err: Error): boolean;
  emit(event: 'listening'): boolean;

  on(event: string, listener: (...args: any[]) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'connection', listener: (socket: Socket) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'listening', listener: () => void): this;

  once(event: string, listener: (...args: any[]) => void): this;
  once(event: 'close', listener: () => void): this;
  once(event: 'connection', listener: (socket: Socket) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'listening', listener: () => void): this;

  prependListener(event: string, listener: (...args: any[]) => void): this;
  prependListener(event: 'close', listener: () => void): this;
  prependListener(event: 'connection', listener: (socket: Socket) => void): this;
  prependListener(event: 'error', listener: (err: Error) => void): this;
  prependListener(event: 'listening', listener: () => void): this;

  prependOnceListener(event: string, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'close', listener: () => void): this;
  prependOnceListener(event: 'connection', listener: (socket: Socket) => void): this;
  prependOnceListener(event: 'error', listener: (err: Error) => void): this;
  prependOnceListener(event: 'listening', listener: () => void): this;
}

export interface TcpNetConnectOpts extends TcpSocketConnectOpts, SocketConstructorOpts {
  timeout?: number | undefined;
}

export interface IpcNetConnectOpts extends IpcSocketConnectOpts, SocketConstructorOpts {
  timeout?: number | undefined;
}

export type NetConnectOpts = TcpNetConnectOpts | IpcNetConnectOpts;

export function createServer(connectionListener?: (socket: Socket) => void): Server;
export function createServer(options?: ServerOpts, connectionListener?: (socket: Socket) => void): Server;

export function connect(options: NetConnectOpts, connectionListener?: () => void): Socket;
export function connect(port: number, host?: string, connectionListener?: () => void): Socket;
export function connect(path: string, connectionListener?: () => void): Socket;

export function createConnection(options: NetConnectOpts, connectionListener?: () => void): Socket;
export function createConnection(port: number, host?: string, connectionListener?: () => void): Socket;
export function createConnection(path: string, connectionListener?: () => void): Socket;

/** Node's legacy alias of Socket. */
export { Socket as Stream };

export function isIP(input: string): number;
export function isIPv4(input: string): boolean;
export function isIPv6(input: string): boolean;
