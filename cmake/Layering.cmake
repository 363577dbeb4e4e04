# The layering of ARCHITECTURE.md ("What may depend on what") as the build sees it: which
# libraries each layer compiles with. What a target compiles with is the usage requirements of
# everything it links, followed through their INTERFACE_LINK_LIBRARIES; a library that a static
# library links PRIVATE appears there only as $<LINK_ONLY:...> — on the program's link line, never
# on a dependent's compile line. So a provider that linked its C library PUBLIC, or a core that
# linked CLI11, would pass its headers' include paths and definitions up a layer: the
# configuration fails instead, naming the chain. The #include lines themselves (Debian's headers
# are all in /usr/include, reachable without any link) are tests/layering/check_layering.sh's.

# pgc_forbid_usage(<target> FORBIDS <target>...): fails the configuration when <target> compiles
# with one of the forbidden targets, directly or through another's usage requirements.
function(pgc_forbid_usage target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "FORBIDS")
  get_target_property(queue ${target} LINK_LIBRARIES)
  if(NOT queue)
    set(queue "")
  endif()
  foreach(item IN LISTS queue)
    set(via_${item} "${target}")
  endforeach()
  set(seen "")
  while(queue)
    list(POP_FRONT queue item)
    # $<LINK_ONLY:x>: linked, not compiled with; other generator expressions and CMake's
    # directory markers (::@...) name nothing we forbid.
    if(item MATCHES "^\\$<" OR item MATCHES "^::@" OR item IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${item})
    set(name ${item})
    if(TARGET ${item})
      get_target_property(aliased ${item} ALIASED_TARGET)
      if(aliased)
        set(name ${aliased})
      endif()
    endif()
    if(item IN_LIST arg_FORBIDS OR name IN_LIST arg_FORBIDS)
      if(via_${item} STREQUAL target)
        set(why "${target} links ${item}")
      else()
        set(why "${target} compiles with ${item}, passed on by ${via_${item}} (link it PRIVATE there)")
      endif()
      message(FATAL_ERROR "layering: ${why}; ${target} may not compile with it "
        "(ARCHITECTURE.md, \"What may depend on what\"; cmake/Layering.cmake)")
    endif()
    if(TARGET ${name})
      get_target_property(next ${name} INTERFACE_LINK_LIBRARIES)
      if(next)
        foreach(n IN LISTS next)
          if(NOT DEFINED via_${n})
            set(via_${n} "${via_${item}} -> ${item}")
          endif()
        endforeach()
        list(APPEND queue ${next})
      endif()
    endif()
  endwhile()
endfunction()

# Every layer's rule; called once all targets exist (end of the top-level CMakeLists.txt).
function(pgc_check_layering)
  # The libraries the providers wrap, each one provider's own.
  set(ssh PkgConfig::LIBSSH)
  set(postgres PostgreSQL::PostgreSQL)
  set(git PkgConfig::LIBGIT2)
  set(crypto OpenSSL::Crypto OpenSSL::SSL)
  set(boost Boost::headers Boost::boost Boost::filesystem)
  set(libraries ${ssh} ${postgres} ${git} ${crypto} ${boost})
  set(providers pgc_provider_ssh pgc_provider_postgres pgc_provider_patroni pgc_provider_git
      pgc_provider_process pgc_provider_http pgc_provider_http_client pgc_provider_crypto pgc_provider_etcd)
  set(above_providers pgc_manifests pgc_core pgc_cli CLI11::CLI11 yaml-cpp)

  pgc_forbid_usage(pgc_util FORBIDS ${libraries} ${providers} ${above_providers})
  pgc_forbid_usage(pgc_manifests FORBIDS ${libraries} ${providers} pgc_core pgc_cli CLI11::CLI11)
  pgc_forbid_usage(pgc_core FORBIDS ${libraries} pgc_cli CLI11::CLI11)
  pgc_forbid_usage(pgc_cli FORBIDS ${libraries})

  # Each provider compiles with its own library only, and with nothing of manifests or the core.
  foreach(provider IN LISTS providers)
    string(REGEX REPLACE "^pgc_provider_" "" short ${provider})
    set(own "")
    if(short STREQUAL "ssh" OR short STREQUAL "postgres" OR short STREQUAL "git" OR short STREQUAL "crypto")
      set(own ${${short}})
    elseif(short STREQUAL "http_client")
      # The Beast client's TLS is Asio's over libssl (which brings libcrypto).
      set(own ${boost} OpenSSL::SSL OpenSSL::Crypto)
    elseif(short MATCHES "^(http|process)$")
      set(own ${boost})
    endif()
    set(others ${libraries})
    if(own)
      list(REMOVE_ITEM others ${own})
    endif()
    pgc_forbid_usage(${provider} FORBIDS ${others} ${above_providers})
  endforeach()
endfunction()
